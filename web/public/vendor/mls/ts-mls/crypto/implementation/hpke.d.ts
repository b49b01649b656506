import { CipherSuite } from "../../../hpke-core/mod.js";
import { Aead } from "../aead.js";
import { HpkeAlgorithm, Hpke } from "../hpke.js";
export declare function makeGenericHpke(hpkealg: HpkeAlgorithm, aead: Aead, cs: CipherSuite): Promise<Hpke>;
