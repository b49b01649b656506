import type { AeadEncryptionContext } from "../../../hpke-common/mod.js";
export interface KeyInfo {
    key: AeadEncryptionContext;
    baseNonce: Uint8Array;
    seq: number;
}
