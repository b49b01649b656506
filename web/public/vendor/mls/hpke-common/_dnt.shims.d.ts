export declare const dntGlobalThis: Omit<typeof globalThis, never>;
