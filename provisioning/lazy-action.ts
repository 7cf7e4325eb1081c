/** An action that loads `name` from its module and calls it with commander's arguments. */
export function lazy<M extends Record<K, (...args: never[]) => unknown>, K extends keyof M>(load: () => Promise<M>, name: K) {
  return async (...args: Parameters<M[K]>): Promise<void> => {
    await (await load())[name](...args);
  };
}
