import type { MaybePromise } from './projection.js';

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
  /** Creates the checkpoint (and lock) tables; idempotent. */
  prepare(): Promise<void>;
  readCheckpoint(projection: string): Promise<Checkpoint | undefined>;
  /**
   * Runs `work` in one read-model transaction. With `next`, also moves the checkpoint from
   * `expected` to `next` — in the same transaction for `exactly-once` targets — and throws
   * `CheckpointConflictError` (committing nothing) when the stored checkpoint is not `expected`.
   * Without `next` (setup), the checkpoint is neither checked nor written.
   */
  commit(
    projection: string,
    expected: Checkpoint | undefined,
    next: Checkpoint | undefined,
    work: (ctx: Ctx) => MaybePromise<void>,
  ): Promise<void>;
}

/** Keeps one runner per projection. `tryAcquire` tries once and returns undefined when taken. */
export interface ProjectionLock {
  tryAcquire(projection: string, owner: string): Promise<ProjectionLease | undefined>;
}

export interface ProjectionLease {
  /** Called at most once, when the lock is lost while held (connection dropped, heartbeat failed). */
  onLost(listener: (reason: string, cause?: unknown) => void): void;
  release(): Promise<void>;
}

/**
 * Tells the runner that new events may be there (in-process append listener, PostgreSQL NOTIFY).
 * Returns an unsubscribe function. The runner polls as well, so missed wake-ups only add latency.
 */
export type WakeUpSource = (listener: () => void) => MaybePromise<() => MaybePromise<void>>;
