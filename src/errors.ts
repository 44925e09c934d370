import { EventfoldError, isEventfoldError } from './errors/base.js';

/**
 * What a writer believes about a stream before appending:
 * - a number: the stream is at exactly that version (0 = it does not exist yet);
 * - `'no-stream'`: it does not exist yet;
 * - `'stream-exists'`: it has at least one event;
 * - `'any'`: no check.
 *
 * Declared here, with the errors that carry it, so the errors import nothing from the layers
 * above (no import cycle with `store/expected-version.ts`, which re-exports it).
 */
export type ExpectedVersion = number | 'no-stream' | 'stream-exists' | 'any';

// The base class and its checks, and the errors of storage backends, live in their own files.
export * from './errors/base.js';
export * from './errors/store.js';

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
