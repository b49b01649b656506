export declare function emitNotSupported<T>(): Promise<T>;
