import { InvalidArgumentError, StoreClosedError } from '../errors.js';
import { assertValidStreamId, deepFreezeJson } from '../events/validation.js';
import type { Snapshot, SnapshotStore } from './snapshot-store.js';

/** Snapshots in process memory, sorted by version per stream. */
export class InMemorySnapshotStore implements SnapshotStore {
  private readonly byStream = new Map<string, Snapshot[]>();
  private closed = false;

  async save(snapshot: Snapshot): Promise<void> {
    this.assertOpen();
    assertValidSnapshot(snapshot);
    // Round-trip through JSON so the stored state cannot alias the caller's objects.
    const stored: Snapshot = Object.freeze({
      ...snapshot,
      state: deepFreezeJson(JSON.parse(JSON.stringify(snapshot.state)) as Snapshot['state']),
    });
    let list = this.byStream.get(snapshot.streamId);
    if (list === undefined) {
      list = [];
      this.byStream.set(snapshot.streamId, list);
    }
    const at = list.findIndex((s) => s.version >= snapshot.version);
    if (at === -1) list.push(stored);
    else if (list[at]!.version === snapshot.version) list[at] = stored;
    else list.splice(at, 0, stored);
  }

  async load(
    streamId: string,
    options: { readonly maxVersion?: number; readonly schemaVersion?: number } = {},
  ): Promise<Snapshot | undefined> {
    this.assertOpen();
    const list = this.byStream.get(streamId);
    if (list === undefined) return undefined;
    const max = options.maxVersion ?? Infinity;
    for (let i = list.length - 1; i >= 0; i--) {
      const s = list[i]!;
      if (s.version <= max && (options.schemaVersion === undefined || s.schemaVersion === options.schemaVersion)) {
        return s;
      }
    }
    return undefined;
  }

  async close(): Promise<void> {
    this.closed = true;
  }

  private assertOpen(): void {
    if (this.closed) throw new StoreClosedError('in-memory snapshot store');
  }
}

/** Checks a snapshot before any store writes it; shared by every snapshot adapter. */
export function assertValidSnapshot(snapshot: Snapshot): void {
  assertValidStreamId(snapshot.streamId);
  if (!Number.isSafeInteger(snapshot.version) || snapshot.version < 1) {
    throw new InvalidArgumentError(`Snapshot version must be an integer >= 1, got ${String(snapshot.version)}.`);
  }
  if (!Number.isSafeInteger(snapshot.schemaVersion)) {
    throw new InvalidArgumentError(`Snapshot schemaVersion must be an integer, got ${String(snapshot.schemaVersion)}.`);
  }
  if (!(snapshot.takenAt instanceof Date)) {
    throw new InvalidArgumentError('Snapshot takenAt must be a Date.');
  }
}
