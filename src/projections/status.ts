import type { EventStore } from '../store/event-store.js';
import type { CheckpointStore } from './checkpoint-store.js';
import type { DeadLetterStore } from './dead-letters.js';
import { assertValidProjectionName } from './projection.js';

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
}

/**
 * Reads a projection's position, lag and parked count from storage. A running runner's state and
 * last error live in its process: read them from `runner.status` or `onStatus`.
 */
export async function readProjectionStatus(
  sources: { readonly store: EventStore; readonly checkpoints: CheckpointStore; readonly deadLetters?: DeadLetterStore },
  projection: string,
): Promise<StoredProjectionStatus> {
  assertValidProjectionName(projection);
  const [checkpoint, headPosition, parked] = await Promise.all([
    sources.checkpoints.load(projection),
    sources.store.headPosition(),
    sources.deadLetters?.count(projection) ?? Promise.resolve(0),
  ]);
  const position = checkpoint?.position ?? 0;
  return Object.freeze({
    projection,
    position,
    version: checkpoint?.version,
    headPosition,
    lag: Math.max(0, headPosition - position),
    parked,
  });
}
