import type { ExpectedVersion } from './store/expected-version.js';

/**
 * Base class of every error eventfold throws. `code` is stable across releases so callers can
 * branch on it without `instanceof`, which breaks when two copies of the package are installed.
 */
export abstract class EventfoldError extends Error {
  abstract readonly code: string;

  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** Returns true when `error` is an eventfold error with the given code, across package copies. */
export function isEventfoldError<C extends string>(
  error: unknown,
  code?: C,
): error is EventfoldError & { code: C } {
  if (typeof error !== 'object' || error === null) return false;
  const candidate = error as { code?: unknown; name?: unknown };
  if (typeof candidate.code !== 'string') return false;
  if (!(error instanceof Error)) return false;
  return code === undefined ? candidate.code.length > 0 : candidate.code === code;
}

function describeExpected(expected: ExpectedVersion): string {
  return typeof expected === 'number' ? `version ${expected}` : `'${expected}'`;
}

/** The stream's version is not the one the writer expected: another writer got there first. */
export class ConcurrencyError extends EventfoldError {
  readonly code = 'CONCURRENCY_CONFLICT' as const;

  constructor(
    readonly streamId: string,
    readonly expectedVersion: ExpectedVersion,
    readonly actualVersion: number,
  ) {
    super(
      `Concurrency conflict on stream '${streamId}': expected ${describeExpected(expectedVersion)} ` +
        `but the stream is at version ${actualVersion}. Nothing was written. ` +
        `Reload the stream (or aggregate), re-apply your decision to the current state and retry.`,
    );
  }
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

/** The storage backend could not be reached or dropped the connection mid-operation. */
export class StoreUnavailableError extends EventfoldError {
  readonly code = 'STORE_UNAVAILABLE' as const;

  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
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
