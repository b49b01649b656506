import type { AeadEncryptionContext, AeadInterface } from "../../../hpke-common/mod.js";
import { AeadId } from "../../../hpke-common/mod.js";
/**
 * The ExportOnly mode for HPKE AEAD implementing {@link AeadInterface}.
 *
 * When using `@hpke/core`, the instance of this class must be specified
 * to the `aead` parameter of {@link CipherSuiteParams} instead of `AeadId.ExportOnly`
 * as follows:
 *
 * @example
 *
 * ```ts
 * import {
 *   CipherSuite,
 *   DhkemP256HkdfSha256,
 *   ExportOnly,
 *   HkdfSha256,
 * } from "../../mod.js";
 *
 * const suite = new CipherSuite({
 *   kem: new DhkemP256HkdfSha256(),
 *   kdf: new HkdfSha256(),
 *   aead: new ExportOnly(),
 * });
 * ```
 */
export declare class ExportOnly implements AeadInterface {
    readonly id: AeadId;
    readonly keySize: number;
    readonly nonceSize: number;
    readonly tagSize: number;
    createEncryptionContext(_key: ArrayBufferLike | ArrayBufferView): AeadEncryptionContext;
}
