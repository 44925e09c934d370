import { InvalidArgumentError } from '../errors.js';
import { assertReadableStreamId } from '../events/validation.js';
import type { Snapshot } from './snapshot-store.js';

/**
 * Shared input checks of every snapshot store, so all of them refuse the same snapshot the same
 * way before anything is written.
 */

/** A validated snapshot with its state as JSON text, computed once. */
export interface PreparedSnapshot {
  readonly snapshot: Snapshot;
  readonly stateJson: string;
  readonly takenAtMs: number;
}

export function prepareSnapshot(snapshot: Snapshot): PreparedSnapshot {
  assertValidSnapshot(snapshot);
  let stateJson: string | undefined;
  try {
    stateJson = JSON.stringify(snapshot.state);
  } catch (error) {
    throw new InvalidArgumentError(
      `Snapshot state of stream '${snapshot.streamId}' is not JSON-serialisable: ${error instanceof Error ? error.message : String(error)}.`,
    );
  }
  if (stateJson === undefined) {
    throw new InvalidArgumentError(`Snapshot state of stream '${snapshot.streamId}' is not JSON (got ${typeof snapshot.state}).`);
  }
  return { snapshot, stateJson, takenAtMs: snapshot.takenAt.getTime() };
}

/** Checks a snapshot's fields (not its state's JSON-ness; `prepareSnapshot` does that). */
export function assertValidSnapshot(snapshot: Snapshot): void {
  if (typeof snapshot !== 'object' || snapshot === null) throw new InvalidArgumentError('save takes a snapshot object.');
  // A snapshot caches a stream, it never creates one: a stream an earlier version stored under an
  // id now refused for new streams may be snapshotted too (Repository loads take snapshots).
  assertReadableStreamId(snapshot.streamId);
  if (!Number.isSafeInteger(snapshot.version) || snapshot.version < 1) {
    throw new InvalidArgumentError(`Snapshot version must be an integer >= 1, got ${String(snapshot.version)}.`);
  }
  if (!Number.isSafeInteger(snapshot.schemaVersion)) {
    throw new InvalidArgumentError(`Snapshot schemaVersion must be an integer, got ${String(snapshot.schemaVersion)}.`);
  }
  if (!(snapshot.takenAt instanceof Date) || Number.isNaN(snapshot.takenAt.getTime())) {
    throw new InvalidArgumentError(`Snapshot takenAt of stream '${snapshot.streamId}' must be a valid Date.`);
  }
}

/** A normalised `load` query: the newest snapshot with `version <= maxVersion` (and the schema version). */
export interface SnapshotQuery {
  /** Whole number, at most `Number.MAX_SAFE_INTEGER`; below 1 matches nothing. */
  readonly maxVersion: number;
  readonly schemaVersion: number | undefined;
}

export function resolveSnapshotQuery(
  streamId: string,
  options: { readonly maxVersion?: number; readonly schemaVersion?: number } | undefined,
): SnapshotQuery {
  assertReadableStreamId(streamId);
  const maxVersion = options?.maxVersion;
  if (maxVersion !== undefined && (typeof maxVersion !== 'number' || Number.isNaN(maxVersion))) {
    throw new InvalidArgumentError(`maxVersion must be a number, got ${String(maxVersion)}.`);
  }
  const schemaVersion = options?.schemaVersion;
  if (schemaVersion !== undefined && !Number.isSafeInteger(schemaVersion)) {
    throw new InvalidArgumentError(`schemaVersion must be an integer, got ${String(schemaVersion)}.`);
  }
  const max = maxVersion === undefined || maxVersion >= Number.MAX_SAFE_INTEGER ? Number.MAX_SAFE_INTEGER : Math.floor(maxVersion);
  return { maxVersion: max, schemaVersion };
}
