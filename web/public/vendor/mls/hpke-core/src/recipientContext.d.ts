import { EncryptionContextImpl } from "./encryptionContext.js";
export declare class RecipientContextImpl extends EncryptionContextImpl {
    #private;
    open(data: ArrayBufferLike | ArrayBufferView, aad?: ArrayBufferLike | ArrayBufferView): Promise<ArrayBuffer>;
}
