import { KemInterface } from "../../../../hpke-core/mod.js";
import { KemAlgorithm } from "../../kem.js";
export declare function makeDhKem(kemAlg: KemAlgorithm): Promise<KemInterface>;
