import { EventfoldError, InvalidEventError } from '../errors.js';

/** One problem a schema found, with the path to the offending value (`'email'`, `'items.2.sku'`; `''` for the root). */
export interface ValidationIssue {
  readonly path: string;
  readonly message: string;
}

function listIssues(issues: readonly ValidationIssue[]): string {
  return issues.map((i) => `${i.path === '' ? '(root)' : i.path}: ${i.message}`).join('; ');
}

/**
 * An event's data does not match the schema registered for its type (or the type has no schema).
 * An `InvalidEventError` (code `INVALID_EVENT`) with the issues by path. Nothing was written.
 */
export class EventSchemaError extends InvalidEventError {
  constructor(
    readonly eventType: string,
    readonly issues: readonly ValidationIssue[],
    details: { readonly streamId?: string; readonly index?: number } = {},
  ) {
    super(
      `Event '${eventType}'${details.streamId === undefined ? '' : ` for stream '${details.streamId}'`} is invalid: ` +
        `${listIssues(issues)}. Nothing was written.`,
      { ...details, ...(issues[0] === undefined ? {} : { path: issues[0].path }) },
    );
  }
}

/** A command does not match the schema registered for its type. The handler did not run. */
export class InvalidCommandError extends EventfoldError {
  readonly code = 'INVALID_COMMAND' as const;

  constructor(
    readonly commandType: string,
    readonly issues: readonly ValidationIssue[],
  ) {
    super(`Command '${commandType}' is invalid: ${listIssues(issues)}. It was not handled and nothing was written.`);
  }
}

/** An upcaster threw (or returned something that is not an event) while reading an old event. */
export class UpcastError extends EventfoldError {
  readonly code = 'UPCAST_FAILED' as const;

  constructor(
    readonly eventType: string,
    readonly schemaVersion: number,
    readonly position: number,
    cause: unknown,
  ) {
    super(
      `Upcasting event '${eventType}' (schema version ${schemaVersion}, position ${position}) failed: ` +
        `${cause instanceof Error ? cause.message : String(cause)}. Fix the upcaster; stored events are unchanged.`,
      { cause },
    );
  }
}

/** The stream was deleted with a tombstone: it can still be found in the log, but not appended to or loaded. */
export class StreamDeletedError extends EventfoldError {
  readonly code = 'STREAM_DELETED' as const;

  constructor(
    readonly streamId: string,
    /** The version of the tombstone (the stream's last event). */
    readonly deletedAtVersion: number,
  ) {
    super(
      `Stream '${streamId}' was deleted (tombstone at version ${deletedAtVersion}). ` +
        `Nothing was written; its history stays in the log but the stream takes no more events.`,
    );
  }
}

/** The idempotency key (command id) was already used for a different command. Nothing was written. */
export class IdempotencyKeyReusedError extends EventfoldError {
  readonly code = 'IDEMPOTENCY_KEY_REUSED' as const;

  constructor(readonly commandId: string) {
    super(
      `Command id '${commandId}' was already used for a different command (type or data differ). ` +
        `Use a fresh id for a new command; nothing was written.`,
    );
  }
}

/**
 * The command with this id already wrote its events, but its result is not recorded yet: the first
 * attempt is still running, or its process stopped between storing the events and the result.
 * Nothing was written again; retry later.
 */
export class CommandPendingError extends EventfoldError {
  readonly code = 'COMMAND_PENDING' as const;

  constructor(readonly commandId: string) {
    super(
      `Command '${commandId}' was already handled and its events are stored, but its result is not recorded yet ` +
        `(it is still running, or stopped before recording it). Nothing was written again; retry later.`,
    );
  }
}
