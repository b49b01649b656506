import { AeadInterface } from "../../../../hpke-core/mod.js";
import { AeadAlgorithm, Aead } from "../../aead.js";
export declare function makeAead(aeadAlg: AeadAlgorithm): Promise<[Aead, AeadInterface]>;
