/** @public */
export type Brand<T, B> = T & {
    __brand: B;
};
