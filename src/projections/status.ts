import type { EventStore } from '../store/event-store.js';
import type { CheckpointStore } from './checkpoint-store.js';
import type { DeadLetterStore } from './dead-letters.js';
import { assertValidProjectionName } from './projection.js';
import type { StoredRunnerError } from './runner-error.js';

/** A projection's standing as stored, readable without running it (from a CLI or a health check). */
export interface StoredProjectionStatus {
  readonly projection: string;
  /** Last position applied (0 when it never ran). */
  readonly position: number;
  /** Projection version the checkpoint was built with; undefined when it never ran. */
  readonly version: number | undefined;
  readonly headPosition: number;
  /** Events not yet applied: `headPosition - position`. */
  readonly lag: number;
  /** Parked events (0 without a dead-letter store). */
  readonly parked: number;
  /** The runner's last fault as it stored it beside the checkpoint (undefined when none, or the store keeps none). */
  readonly lastError: StoredRunnerError | undefined;
}

/**
 * Reads a projection's position, lag, parked count and stored last fault from storage. A running
 * runner's live state is in its process: read it from `runner.status` or `onStatus`.
 */
export async function readProjectionStatus(
  sources: { readonly store: EventStore; readonly checkpoints: CheckpointStore; readonly deadLetters?: DeadLetterStore },
  projection: string,
): Promise<StoredProjectionStatus> {
  assertValidProjectionName(projection);
  const [checkpoint, headPosition, parked, lastError] = await Promise.all([
    sources.checkpoints.load(projection),
    sources.store.headPosition(),
    sources.deadLetters?.count(projection) ?? Promise.resolve(0),
    sources.checkpoints.loadError?.(projection) ?? Promise.resolve(undefined),
  ]);
  const position = checkpoint?.position ?? 0;
  return Object.freeze({
    projection,
    position,
    version: checkpoint?.version,
    headPosition,
    lag: Math.max(0, headPosition - position),
    parked,
    lastError,
  });
}
