/** What a failing call threw, with the fields eventfold errors (and driver errors) carry. */
export type Failure = Error & { code?: string; transient?: boolean; cause?: unknown; driverCode?: string } & Record<string, unknown>;

/**
 * The error `action` throws or rejects with; fails the test when it succeeds instead. `E` is what
 * the caller takes it for (`unknown` to narrow it itself).
 */
export async function failure<E = Failure>(action: () => unknown): Promise<E> {
  try {
    await action();
  } catch (error) {
    return error as E;
  }
  throw new Error('expected the call to fail, but it succeeded');
}
