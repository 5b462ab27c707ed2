/** A shallow copy of `object` without `keys`: its own enumerable string-keyed properties, in their order. */
export function omit<T extends object, K extends keyof T & string>(object: T, ...keys: K[]): Omit<T, K> {
  const dropped = new Set<string>(keys);
  // Object.fromEntries types its result as a string record; the filter removed exactly `keys`.
  return Object.fromEntries(Object.entries(object).filter(([key]) => !dropped.has(key))) as Omit<T, K>;
}
