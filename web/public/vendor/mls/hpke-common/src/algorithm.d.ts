export declare class NativeAlgorithm {
    protected _api: SubtleCrypto | undefined;
    constructor();
    protected _setup(): Promise<void>;
}
