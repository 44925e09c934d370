import { EventfoldError } from '../errors.js';
import type { RecordedEvent } from '../events/types.js';

/** Where a projection stands: the last position it processed and the projection version. */
export interface CheckpointLike {
  readonly position: number;
  readonly version: number;
}

function causeMessage(cause: unknown): string {
  return cause instanceof Error ? cause.message : String(cause);
}

/**
 * A projection handler threw (or an event had no handler under `unknownEvents: 'fail'`). Names the
 * event so the operator can find it; `attempts` says how often it was tried before the runner stopped.
 */
export class ProjectionHandlerError extends EventfoldError {
  readonly code = 'PROJECTION_HANDLER_FAILED' as const;
  readonly eventType: string;
  readonly streamId: string;
  readonly version: number;
  readonly position: number;
  readonly eventId: string;

  constructor(
    readonly projection: string,
    event: RecordedEvent,
    cause: unknown,
    readonly attempts = 1,
  ) {
    super(
      `Projection '${projection}' failed on event ${event.type} (stream '${event.streamId}', version ` +
        `${event.version}, position ${event.position})` +
        (attempts > 1 ? ` after ${attempts} attempts` : '') +
        `: ${causeMessage(cause)}`,
      { cause },
    );
    this.eventType = event.type;
    this.streamId = event.streamId;
    this.version = event.version;
    this.position = event.position;
    this.eventId = event.eventId;
  }

  /** The same failure, stamped with how many attempts were made; used when the runner gives up. */
  withAttempts(attempts: number, event: RecordedEvent): ProjectionHandlerError {
    const error = new ProjectionHandlerError(this.projection, event, this.cause, attempts);
    error.message +=
      `. The runner stopped; its checkpoint is just before this event, so nothing was skipped. ` +
      `Fix the handler (or compensate for the event) and start the runner again.`;
    return error;
  }
}

/** The runner gave up after repeated failures that were not a handler's (e.g. the database is down). */
export class ProjectionFailedError extends EventfoldError {
  readonly code = 'PROJECTION_FAILED' as const;

  constructor(
    readonly projection: string,
    readonly position: number,
    readonly attempts: number,
    cause: unknown,
  ) {
    super(
      `Projection '${projection}' stopped ` +
        (attempts > 1 ? `after ${attempts} failed attempts ` : 'on a fault that retrying cannot fix ') +
        `at checkpoint ${position}: ` +
        `${causeMessage(cause)}. Start the runner again once the cause is fixed; it resumes from the checkpoint.`,
      { cause },
    );
  }
}

/** Another runner holds the projection's lock and the runner was told not to wait (`whenLocked: 'fail'`). */
export class ProjectionLockedError extends EventfoldError {
  readonly code = 'PROJECTION_LOCKED' as const;

  constructor(readonly projection: string) {
    super(
      `Projection '${projection}' is already being run by another runner (in this or another process). ` +
        `Only one runner may process a projection at a time; use whenLocked: 'wait' to stand by.`,
    );
  }
}

/** The runner lost its lock (connection dropped, heartbeat missed) and stopped so no two run at once. */
export class ProjectionLockLostError extends EventfoldError {
  readonly code = 'PROJECTION_LOCK_LOST' as const;

  constructor(
    readonly projection: string,
    reason: string,
    options?: { cause?: unknown },
  ) {
    super(`Projection '${projection}' lost its runner lock (${reason}); the runner stopped. Start it again.`, options);
  }
}

/** The stored checkpoint moved under the runner: another runner wrote it. Nothing was committed. */
export class CheckpointConflictError extends EventfoldError {
  readonly code = 'PROJECTION_CHECKPOINT_CONFLICT' as const;

  constructor(
    readonly projection: string,
    readonly expected: CheckpointLike | undefined,
    readonly actual: CheckpointLike | undefined,
  ) {
    super(
      `Checkpoint of projection '${projection}' is ${describe(actual)} but this runner expected ` +
        `${describe(expected)}: another runner is processing it. This runner's batch was rolled back.`,
    );
  }
}

/** `waitUntilCaughtUp` / `rebuild` could not finish because the runner stopped (or was never started). */
export class ProjectionStoppedError extends EventfoldError {
  readonly code = 'PROJECTION_STOPPED' as const;

  constructor(readonly projection: string) {
    super(`Projection runner for '${projection}' stopped before it caught up.`);
  }
}

export class ProjectionTimeoutError extends EventfoldError {
  readonly code = 'PROJECTION_TIMEOUT' as const;

  constructor(
    readonly projection: string,
    readonly timeoutMs: number,
    readonly position: number,
    readonly target: number,
  ) {
    super(
      `Projection '${projection}' did not reach position ${target} within ${timeoutMs} ms ` +
        `(it is at ${position}).`,
    );
  }
}

function describe(checkpoint: CheckpointLike | undefined): string {
  return checkpoint === undefined
    ? 'absent'
    : `position ${checkpoint.position} (version ${checkpoint.version})`;
}
