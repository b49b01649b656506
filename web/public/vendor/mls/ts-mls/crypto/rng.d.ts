/** @public */
export interface Rng {
    randomBytes(n: number): Uint8Array;
}
