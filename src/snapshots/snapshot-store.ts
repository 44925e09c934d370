import type { JsonValue } from '../events/types.js';

/** An aggregate's folded state at one version, so loading can skip the events up to it. */
export interface Snapshot<State = JsonValue> {
  readonly streamId: string;
  /** The stream version the state was folded up to (inclusive). */
  readonly version: number;
  /**
   * Version of the state's shape, chosen by the aggregate. A loader that expects another schema
   * version ignores the snapshot and folds from the events, so a changed aggregate never reads a
   * stale shape.
   */
  readonly schemaVersion: number;
  readonly state: State;
  readonly takenAt: Date;
}

/**
 * The snapshot port. Snapshots are a cache: losing one costs a longer fold, never correctness.
 * Stores keep every snapshot saved (one per version), so time travel can start from the newest
 * snapshot at or below the wanted version.
 */
export interface SnapshotStore {
  /** Saves a snapshot; saving the same stream and version again replaces it. */
  save(snapshot: Snapshot): Promise<void>;
  /** The newest snapshot of the stream with `version <= maxVersion` (default: newest of all). */
  load(streamId: string, options?: { readonly maxVersion?: number; readonly schemaVersion?: number }): Promise<Snapshot | undefined>;
  close(): Promise<void>;
}
