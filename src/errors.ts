/**
 * What a writer believes about a stream before appending:
 * - a number: the stream is at exactly that version (0 = it does not exist yet);
 * - `'no-stream'`: it does not exist yet;
 * - `'stream-exists'`: it has at least one event;
 * - `'any'`: no check.
 *
 * Declared here, with the errors that carry it, so this module imports nothing (no import cycle
 * with `store/expected-version.ts`, which re-exports it).
 */
export type ExpectedVersion = number | 'no-stream' | 'stream-exists' | 'any';

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

/** The codes of `ConcurrencyError` and its subclasses. */
export const CONCURRENCY_ERROR_CODES = Object.freeze([
  'CONCURRENCY_CONFLICT',
  'STREAM_ALREADY_EXISTS',
  'AGGREGATE_ALREADY_EXISTS',
] as const);

export type ConcurrencyErrorCode = (typeof CONCURRENCY_ERROR_CODES)[number];

/**
 * True for every failed expected-version check: `ConcurrencyError` and its subclasses
 * `StreamAlreadyExistsError` and `AggregateAlreadyExistsError` (by code, across package copies).
 */
export function isConcurrencyError(error: unknown): error is ConcurrencyError {
  return isEventfoldError(error) && (CONCURRENCY_ERROR_CODES as readonly string[]).includes(error.code);
}

function describeExpected(expected: ExpectedVersion): string {
  return typeof expected === 'number' ? `version ${expected}` : `'${expected}'`;
}

/**
 * The stream's version is not the one the writer expected: another writer got there first.
 * Not transient: reload, decide again on the current state, then retry (`Repository.update` does).
 */
export class ConcurrencyError extends EventfoldError {
  readonly code: ConcurrencyErrorCode = 'CONCURRENCY_CONFLICT';

  constructor(
    readonly streamId: string,
    readonly expectedVersion: ExpectedVersion,
    readonly actualVersion: number,
    message?: string,
  ) {
    super(
      message ??
        `Concurrency conflict on stream '${streamId}': expected ${describeExpected(expectedVersion)} ` +
          `but the stream is at version ${actualVersion}. Nothing was written. ` +
          `Reload the stream (or aggregate), re-apply your decision to the current state and retry.`,
    );
  }
}

/**
 * A write meant to create a stream (`expectedVersion` `'no-stream'` or `0`) found it already
 * there. A `ConcurrencyError`, but reloading and retrying would not help: the thing exists.
 */
export class StreamAlreadyExistsError extends ConcurrencyError {
  override readonly code: 'STREAM_ALREADY_EXISTS' | 'AGGREGATE_ALREADY_EXISTS' = 'STREAM_ALREADY_EXISTS';

  constructor(streamId: string, expectedVersion: ExpectedVersion, actualVersion: number, message?: string) {
    super(
      streamId,
      expectedVersion,
      actualVersion,
      message ??
        `Stream '${streamId}' already exists (it is at version ${actualVersion}), but the append expected ` +
          `${describeExpected(expectedVersion)} to create it. Nothing was written. Pick another id, or ` +
          `load the existing stream if you meant to add to it.`,
    );
  }
}

/** `Repository.save` of a new aggregate whose stream already has events. Nothing was written. */
export class AggregateAlreadyExistsError extends StreamAlreadyExistsError {
  override readonly code = 'AGGREGATE_ALREADY_EXISTS' as const;

  constructor(
    readonly aggregateId: string,
    streamId: string,
    expectedVersion: ExpectedVersion,
    actualVersion: number,
  ) {
    super(
      streamId,
      expectedVersion,
      actualVersion,
      `Aggregate '${aggregateId}' already exists (stream '${streamId}' is at version ${actualVersion}); ` +
        `saving it as new wrote nothing. Use another id, or load the existing aggregate to change it.`,
    );
  }
}

/**
 * The error a failed expected-version check throws: `StreamAlreadyExistsError` when the writer
 * meant to create the stream (`'no-stream'` or `0`) and it exists, else `ConcurrencyError`.
 */
export function expectedVersionConflict(streamId: string, expected: ExpectedVersion, actual: number): ConcurrencyError {
  return (expected === 'no-stream' || expected === 0) && actual > 0
    ? new StreamAlreadyExistsError(streamId, expected, actual)
    : new ConcurrencyError(streamId, expected, actual);
}

/**
 * `error` as an `AggregateAlreadyExistsError` when it is a `StreamAlreadyExistsError` from saving
 * the new aggregate `aggregateId`; any other error unchanged.
 */
export function asAggregateAlreadyExists(error: unknown, aggregateId: string): unknown {
  if (!isEventfoldError(error, 'STREAM_ALREADY_EXISTS')) return error;
  const conflict = error as unknown as StreamAlreadyExistsError;
  return new AggregateAlreadyExistsError(aggregateId, conflict.streamId, conflict.expectedVersion, conflict.actualVersion);
}

export class StreamNotFoundError extends EventfoldError {
  readonly code = 'STREAM_NOT_FOUND' as const;

  constructor(readonly streamId: string) {
    super(`Stream '${streamId}' does not exist (version 0). Append to it first, or check the id.`);
  }
}

export class AggregateNotFoundError extends EventfoldError {
  readonly code = 'AGGREGATE_NOT_FOUND' as const;

  constructor(
    readonly aggregateId: string,
    readonly streamId: string,
    readonly requestedVersion?: number,
    readonly actualVersion?: number,
  ) {
    super(
      requestedVersion === undefined
        ? `Aggregate '${aggregateId}' not found: stream '${streamId}' has no events. ` +
            `Use repository.find() when absence is expected.`
        : `Aggregate '${aggregateId}' has no version ${requestedVersion}: stream '${streamId}' is at ` +
            `version ${actualVersion ?? 0}. Ask for a version between 1 and ${actualVersion ?? 0}.`,
    );
  }
}

/** The event (or batch) cannot be stored as given: wrong shape, not JSON, too large. */
export class InvalidEventError extends EventfoldError {
  readonly code = 'INVALID_EVENT' as const;

  constructor(
    message: string,
    readonly details: { readonly streamId?: string; readonly index?: number; readonly path?: string } = {},
  ) {
    super(message);
  }
}

/** An append would exceed a configured limit on events per append or bytes per event. */
export class BatchTooLargeError extends EventfoldError {
  readonly code = 'BATCH_TOO_LARGE' as const;

  constructor(
    message: string,
    readonly limit: number,
    readonly actual: number,
  ) {
    super(message);
  }
}

export class InvalidStreamIdError extends EventfoldError {
  readonly code = 'INVALID_STREAM_ID' as const;

  constructor(
    readonly streamId: unknown,
    reason: string,
  ) {
    super(`Invalid stream id ${describeValue(streamId)}: ${reason}.`);
  }
}

/** A caller passed an option or argument that makes no sense (negative version, bad limit, …). */
export class InvalidArgumentError extends EventfoldError {
  readonly code = 'INVALID_ARGUMENT' as const;
}

export class StoreClosedError extends EventfoldError {
  readonly code = 'STORE_CLOSED' as const;

  constructor(what = 'event store') {
    super(`The ${what} is closed. Create a new instance to keep working.`);
  }
}

/**
 * The store's engine cannot do what was asked (see `EventStoreCapabilities`). Nothing was written.
 * Not transient: retrying the same call fails the same way.
 */
export class CapabilityNotSupportedError extends EventfoldError {
  readonly code = 'CAPABILITY_NOT_SUPPORTED' as const;

  constructor(
    readonly capability: string,
    message: string,
  ) {
    super(message);
  }
}

/**
 * Base of the errors a store's database or file reports (connection, timeout, disk, schema). The
 * driver's error is the `cause`; `driverCode` is its code (`'55P03'`, `'SQLITE_BUSY'`,
 * `'ECONNRESET'`), for logs. Adapters throw the subclasses below, never the driver's error.
 */
export abstract class StoreError extends EventfoldError {
  readonly driverCode: string | undefined;

  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    const code = (options?.cause as { code?: unknown } | null | undefined)?.code;
    this.driverCode = typeof code === 'string' || typeof code === 'number' ? String(code) : undefined;
  }
}

/**
 * The storage backend could not be reached, dropped the connection mid-operation, or ran out of
 * connections or memory. Transient. A write interrupted this way was rolled back, unless the
 * connection dropped during the commit itself: then it may have been stored, so retry writes with
 * an exact `expectedVersion` (a duplicate then fails as a conflict instead of being written twice).
 */
export class StoreUnavailableError extends StoreError {
  readonly code = 'STORE_UNAVAILABLE' as const;
  override readonly transient = true;
}

/**
 * A wait exceeded a limit: a lock wait (PostgreSQL `lock_timeout`, SQLite's `busyTimeout` while
 * another connection or process holds the write lock), a statement (`statement_timeout`) or a
 * cancelled statement. Nothing was written. Transient: retry with backoff.
 */
export class StoreTimeoutError extends StoreError {
  readonly code = 'STORE_TIMEOUT' as const;
  override readonly transient = true;
}

/**
 * The database aborted the transaction to keep concurrent transactions consistent (PostgreSQL
 * serialization failure or deadlock, SQLite `SQLITE_LOCKED` or a stale WAL snapshot). Nothing was
 * written. Transient: run the whole transaction again.
 */
export class TransactionConflictError extends StoreError {
  readonly code = 'TRANSACTION_CONFLICT' as const;
  override readonly transient = true;
}

/**
 * The disk (or the database's size limit) is full. Nothing was written. Transient: it clears once
 * space is freed, so retry with backoff, and alert an operator.
 */
export class StorageFullError extends StoreError {
  readonly code = 'STORAGE_FULL' as const;
  override readonly transient = true;
}

/**
 * The database accepts no writes: a read-only connection or file, a read-only transaction or
 * server setting, a hot standby. Nothing was written. Point the store at a writable database.
 */
export class StoreReadOnlyError extends StoreError {
  readonly code = 'STORE_READ_ONLY' as const;
}

/** The database reports damaged data (or the file is not a database). Restore from a backup. */
export class StoreCorruptError extends StoreError {
  readonly code = 'STORE_CORRUPT' as const;
}

/**
 * The store's tables or functions are missing or outdated: `migrate()` has not been run on this
 * database/schema. Not transient (retrying spins for ever): run `migrate()` once, then retry.
 */
export class SchemaNotMigratedError extends StoreError {
  readonly code = 'SCHEMA_NOT_MIGRATED' as const;
}

/**
 * The database was migrated by a newer eventfold whose schema this version does not know. Nothing
 * was changed. Not transient: upgrade eventfold (never migrate down).
 */
export class UnsupportedSchemaVersionError extends EventfoldError {
  readonly code = 'SCHEMA_VERSION_UNSUPPORTED' as const;

  /** `location` names the database: a SQLite file, or a PostgreSQL schema. */
  constructor(
    readonly component: string,
    readonly foundVersion: number,
    readonly supportedVersion: number,
    readonly location: string,
  ) {
    super(
      `${location} holds eventfold ${component} schema version ${foundVersion}, but this eventfold supports ` +
        `up to version ${supportedVersion}. It was written by a newer eventfold; upgrade eventfold to use it. ` +
        `Nothing was changed.`,
    );
  }
}

/**
 * The database rejected a call for a reason none of the other store errors names (a permission, a
 * constraint of your own tables in an append hook, …). The driver's error is the `cause`. Not
 * transient.
 */
export class StoreFailureError extends StoreError {
  readonly code = 'STORE_FAILURE' as const;
}

/** An event was applied to an aggregate out of sequence (its version does not follow). */
export class EventOutOfOrderError extends EventfoldError {
  readonly code = 'EVENT_OUT_OF_ORDER' as const;

  constructor(
    readonly aggregateId: string,
    readonly expectedVersion: number,
    readonly eventVersion: number,
  ) {
    super(
      `Event out of order for aggregate '${aggregateId}': expected version ${expectedVersion} ` +
        `but got ${eventVersion}. Events must be applied in stream order without gaps.`,
    );
  }
}

/**
 * An aggregate was given an event of another stream than the one it is folded from (for example
 * `fromEvents` with events of two streams mixed). Nothing of that event was applied.
 */
export class EventStreamMismatchError extends EventfoldError {
  readonly code = 'EVENT_STREAM_MISMATCH' as const;

  constructor(
    readonly aggregateId: string,
    readonly expectedStreamId: string,
    readonly eventStreamId: string,
    readonly eventVersion: number,
  ) {
    super(
      `Aggregate '${aggregateId}' is folded from stream '${expectedStreamId}' but was given an event of ` +
        `stream '${eventStreamId}' (version ${eventVersion}). An aggregate takes the events of one stream only.`,
    );
  }
}

/** Base for domain rule violations; applications extend it for their own rules. */
export class InvalidOperationError extends EventfoldError {
  readonly code: string = 'INVALID_OPERATION';
}

export class HandlerNotFoundError extends EventfoldError {
  readonly code = 'HANDLER_NOT_FOUND' as const;

  constructor(
    readonly kind: 'command' | 'query',
    readonly type: string,
  ) {
    super(`No ${kind} handler registered for '${type}'. Register one with ${kind}Bus.register('${type}', handler).`);
  }
}

export class DuplicateHandlerError extends EventfoldError {
  readonly code = 'DUPLICATE_HANDLER' as const;

  constructor(
    readonly kind: 'command' | 'query',
    readonly type: string,
  ) {
    super(`A ${kind} handler for '${type}' is already registered; each ${kind} type has exactly one handler.`);
  }
}

export function describeValue(value: unknown): string {
  if (typeof value === 'string') {
    return value.length > 80 ? `'${value.slice(0, 77)}...' (${value.length} chars)` : `'${value}'`;
  }
  if (value === null) return 'null';
  return typeof value;
}
