/**
 * Marks eventfold's own errors. `Symbol.for` returns the same symbol in every copy of the package
 * (and every realm), so errors from a duplicated install are still recognised, while a driver error
 * that merely has a string `code` (`'55P03'`, `'ECONNREFUSED'`) is not.
 */
const EVENTFOLD_ERROR = Symbol.for('eventfold.error');

/**
 * Base class of every error eventfold throws. `code` is stable across releases so callers can
 * branch on it without `instanceof`, which breaks when two copies of the package are installed.
 *
 * `transient` is true when the same call may succeed if simply tried again later (a lost
 * connection, a lock wait that timed out, a serialization failure, a disk that fills up): retry
 * loops use `isTransientError`. Everything else needs a change first (bad input, a conflict to
 * re-decide, a missing migration, a read-only database) and is not transient.
 */
export abstract class EventfoldError extends Error {
  abstract readonly code: string;
  readonly transient: boolean = false;

  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }

  /** The brand `isEventfoldError` checks, on the prototype so it costs nothing per error. */
  static {
    Object.defineProperty(this.prototype, EVENTFOLD_ERROR, { value: true });
  }
}

/**
 * True when `error` is one of eventfold's own errors (from any copy of the package), and when
 * `code` is given, one with that code. Driver and system errors that happen to carry a `code` are
 * not eventfold errors: stores translate them into typed errors (their `cause`) before they reach you.
 */
export function isEventfoldError<C extends string>(
  error: unknown,
  code?: C,
): error is EventfoldError & { code: C } {
  if (typeof error !== 'object' || error === null) return false;
  if ((error as { [EVENTFOLD_ERROR]?: unknown })[EVENTFOLD_ERROR] !== true) return false;
  const candidate = (error as { code?: unknown }).code;
  if (typeof candidate !== 'string') return false;
  return code === undefined ? candidate.length > 0 : candidate === code;
}

/**
 * An adapter's opinion on a raw driver error: `true` transient (retry), `false` permanent (stop),
 * `undefined` no opinion. The PostgreSQL and SQLite adapters export theirs (`classifyPgError`,
 * `classifySqliteError`); the projection runners pass them to `isTransientError`.
 */
export type TransientErrorClassifier = (error: unknown) => boolean | undefined;

/**
 * True when retrying the same call later may succeed without changing anything: retry these with
 * capped exponential backoff and jitter, and report each failure; stop (or give up) on the rest.
 *
 * Follows the `cause` chain from the innermost error outwards, and the first opinion decides:
 * `classify`'s (an adapter's view of its raw driver errors), else an eventfold error's
 * `transient` flag (`STORE_UNAVAILABLE`, `STORE_TIMEOUT`, `TRANSACTION_CONFLICT` and
 * `STORAGE_FULL` are transient). So a handler error whose cause is a dropped connection is
 * transient, and anything that is not an eventfold error (nor judged by `classify`) is not.
 */
export function isTransientError(error: unknown, classify?: TransientErrorClassifier): boolean {
  const chain: unknown[] = [];
  let current: unknown = error;
  while (current !== undefined && current !== null && chain.length < 10 && !chain.includes(current)) {
    chain.push(current);
    current = (current as { cause?: unknown }).cause;
  }
  // Innermost first: the driver's own error knows best what happened.
  for (let i = chain.length - 1; i >= 0; i--) {
    const link = chain[i];
    const verdict = classify?.(link);
    if (verdict !== undefined) return verdict;
    if (isEventfoldError(link)) return (link as { transient?: unknown }).transient === true;
  }
  return false;
}
