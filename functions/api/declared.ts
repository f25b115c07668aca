/**
 * The answer types of the jobs API contract (./jobs.ts, ./results.ts) are built with this: answers
 * are parsed with `looseObject`, and their types keep only the declared fields.
 */

/**
 * A parsed answer's type without the `[field: string]: unknown` that `looseObject` adds: the fields
 * the contract declares, at any depth. Unions and arrays keep their shape.
 */
export type Declared<T> = T extends readonly (infer U)[]
  ? Declared<U>[]
  : T extends object
    ? { [K in keyof T as string extends K ? never : K]: Declared<T[K]> }
    : T;
