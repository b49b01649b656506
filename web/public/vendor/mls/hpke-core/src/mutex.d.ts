export declare class Mutex {
    #private;
    lock(): Promise<() => void>;
}
