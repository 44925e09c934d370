import type { ConsumerLease, ConsumerLock, WakeUpSource } from '../consumers/lock.js';
import type { TransientErrorClassifier } from '../consumers/transient.js';
import type { DeadLetterQueue, DeadLetterWrite } from './dead-letters.js';
import type { MaybePromise } from './projection.js';
import type { StoredRunnerError } from './runner-error.js';

/** Where a projection stands: the last log position it processed, and the projection version. */
export interface Checkpoint {
  readonly position: number;
  readonly version: number;
}

/**
 * - `exactly-once`: read-model writes and the checkpoint commit in one transaction, so a crash
 *   never applies an event twice nor loses one;
 * - `at-least-once`: the checkpoint is saved after the read-model writes; after a crash the last
 *   batch may be applied again, so handlers must be idempotent.
 */
export type DeliveryGuarantee = 'exactly-once' | 'at-least-once';

/**
 * A read model plus the checkpoint that says how far it got. Adapters implement it; the runner
 * is store-agnostic and speaks only to this.
 */
export interface ProjectionTarget<Ctx> {
  readonly delivery: DeliveryGuarantee;
  /** True when `commit` runs `work` synchronously (in-memory, SQLite): handlers must not return promises. */
  readonly synchronous: boolean;
  /** Where parked events go; undefined when the target keeps none (then `poisonEvents: 'park'` is refused). */
  readonly deadLetters?: DeadLetterQueue | undefined;
  /** The adapter's view of its driver's errors: which are transient (see `isTransientError`). */
  readonly classifyError?: TransientErrorClassifier | undefined;
  /**
   * Stores the runner's last fault beside the checkpoint (`undefined` clears it), so tools see it
   * from outside the process. Optional: without it, faults stay in the runner's `status`.
   */
  recordError?(projection: string, error: StoredRunnerError | undefined): Promise<void>;
  /** The stored last fault, if the target keeps one. */
  readError?(projection: string): Promise<StoredRunnerError | undefined>;
  /** Creates the checkpoint (and lock, and dead-letter) tables; idempotent. */
  prepare(): Promise<void>;
  readCheckpoint(projection: string): Promise<Checkpoint | undefined>;
  /**
   * Runs `work` in one read-model transaction. With `next`, also moves the checkpoint from
   * `expected` to `next` — in the same transaction for `exactly-once` targets — and throws
   * `CheckpointConflictError` (committing nothing) when the stored checkpoint is not `expected`.
   * Without `next` (setup, a dead letter's retry), the checkpoint is neither checked nor written.
   * `deadLetter` is written with the rest (same transaction where the target can).
   */
  commit(
    projection: string,
    expected: Checkpoint | undefined,
    next: Checkpoint | undefined,
    work: (ctx: Ctx) => MaybePromise<void>,
    deadLetter?: DeadLetterWrite,
  ): Promise<void>;
}

/** Keeps one runner per projection. `tryAcquire` tries once and returns undefined when taken. */
export type ProjectionLock = ConsumerLock;
export type ProjectionLease = ConsumerLease;
export type { WakeUpSource };
