import type { ConsumerErrorInfo, ConsumerState } from '../consumers/consumer-loop.js';
import type { Logger } from '../logging.js';
import type { PoisonEventPolicy } from './dead-letters.js';
import type { ProjectionProgress } from './progress.js';
import type { RetryPolicy } from './retry.js';

/**
 * Where a runner stands: `idle` (not started), `waiting-for-lock` (another runner has the
 * projection; this one stands by), `catching-up`, `rebuilding`, `live` (tailing the log),
 * `retrying` (a transient fault: it waits out a backoff, then resumes from its checkpoint),
 * `stopping`, `stopped`, `failed` (a fault retrying cannot fix; see `error`).
 */
export type ProjectionState = ConsumerState;

export interface ProjectionStatus {
  readonly projection: string;
  readonly state: ProjectionState;
  /** Last position applied (0 before the first). */
  readonly position: number;
  /** The log's head when the runner last looked (undefined before it did). */
  readonly headPosition: number | undefined;
  /** `headPosition - position`: events still to apply as of that look (0 when live and idle). */
  readonly lag: number | undefined;
  /** Parked events of this projection (see `poisonEvents: 'park'`), as of the runner's last count. */
  readonly parked: number;
  /** Set when `state` is `'failed'`. */
  readonly error: Error | undefined;
  /** The most recent fault, retried or not; kept after the runner recovered. */
  readonly lastError: Error | undefined;
  readonly lastErrorAt: Date | undefined;
  /** Names this runner in lock rows and logs. */
  readonly owner: string;
}

export type ProjectionErrorInfo = ConsumerErrorInfo;

/** One committed batch: which positions it moved the checkpoint across, and how long it took. */
export interface ProjectionBatch {
  readonly projection: string;
  /** The checkpoint before the batch. */
  readonly fromPosition: number;
  /** The checkpoint after it. */
  readonly toPosition: number;
  /** Events applied (parked ones not counted). */
  readonly events: number;
  /** Wall-clock start, ms since the epoch. */
  readonly startedAt: number;
  readonly durationMs: number;
  readonly rebuilding: boolean;
}

/** Options every runner takes; adapter runners add their store and fill in target, lock and wake-ups. */
export interface ProjectionRunnerSettings {
  /** Most events per read-model transaction. Default 500. */
  readonly batchSize?: number;
  /** How often to look for new events (and dead-letter retry requests) when no wake-up arrives. Default 1,000 ms. */
  readonly pollIntervalMs?: number;
  /**
   * Backoff of every retry, and `maxAttempts` per failing event before `poisonEvents` applies.
   * Transient faults (database unreachable, dropped connections, a busy lock) are retried
   * without limit until the runner is stopped.
   */
  readonly retry?: Partial<RetryPolicy>;
  /** What to do with an event whose handler still fails after `retry.maxAttempts`: `'stop'` (default) or `'park'`. */
  readonly poisonEvents?: PoisonEventPolicy;
  /** When another runner holds the projection: stand by and poll (default) or fail `start()`. */
  readonly whenLocked?: 'wait' | 'fail';
  /** How often a waiting runner tries the lock. Default 1,000 ms. */
  readonly lockRetryMs?: number;
  /** Names this runner in lock rows and logs. Default: pid + random suffix. */
  readonly owner?: string;
  /** Least time between two progress reports. Default 500 ms (the last report always comes). */
  readonly progressIntervalMs?: number;
  /** Every state change and every reported fault. */
  readonly onStatus?: (status: ProjectionStatus) => void;
  /** Every failed attempt, retried or not. Without it, faults go to `logger`. */
  readonly onError?: (error: Error, info: ProjectionErrorInfo) => void;
  readonly onProgress?: (progress: ProjectionProgress) => void;
  /** After every committed batch of a catch-up, rebuild or live tail (for tracing and metrics). */
  readonly onBatch?: (batch: ProjectionBatch) => void;
  /** Where faults go when there is no `onError` (and a final failure without listeners). Default `consoleLogger`. */
  readonly logger?: Logger;
}
