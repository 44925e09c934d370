/**
 * @internal Wraps methods of an adapter class so that whatever they throw (synchronously or as a
 * rejection) passes through `translate` first: the adapter's driver errors become typed eventfold
 * errors at the class's public surface, without a try/catch in every method body.
 *
 * `methods` maps a method name to what it does ("load a checkpoint"), which `translate` puts in
 * the error message. A synchronous method stays synchronous.
 */
export function translateMethodErrors<T extends object>(
  type: abstract new (...args: never[]) => T,
  methods: { readonly [K in keyof T]?: string },
  translate: (error: unknown, self: T, action: string) => unknown,
): void {
  const prototype = type.prototype as Record<string, unknown>;
  for (const [name, action] of Object.entries(methods as Record<string, string>)) {
    const method = prototype[name];
    if (typeof method !== 'function') throw new TypeError(`eventfold bug: ${type.name}.${name} is not a method.`);
    const wrapped = function (this: T, ...args: unknown[]): unknown {
      let result: unknown;
      try {
        result = (method as (...a: unknown[]) => unknown).apply(this, args);
      } catch (error) {
        throw translate(error, this, action);
      }
      if (result instanceof Promise) {
        return result.catch((error: unknown) => {
          throw translate(error, this, action);
        });
      }
      return result;
    };
    Object.defineProperty(wrapped, 'name', { value: name });
    Object.defineProperty(prototype, name, { value: wrapped, writable: true, configurable: true, enumerable: false });
  }
}
