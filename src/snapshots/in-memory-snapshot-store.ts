import { StoreClosedError } from '../errors.js';
import { deepFreezeJson } from '../events/validation.js';
import { prepareSnapshot, resolveSnapshotQuery } from './snapshot-input.js';
import type { Snapshot, SnapshotStore } from './snapshot-store.js';

export { assertValidSnapshot } from './snapshot-input.js';

/** Snapshots in process memory, sorted by version per stream. */
export class InMemorySnapshotStore implements SnapshotStore {
  private readonly byStream = new Map<string, Snapshot[]>();
  private closed = false;

  async save(snapshot: Snapshot): Promise<void> {
    this.assertOpen();
    const { stateJson, takenAtMs } = prepareSnapshot(snapshot);
    // A copy through JSON, so the stored state cannot alias the caller's objects.
    const stored: Snapshot = Object.freeze({
      streamId: snapshot.streamId,
      version: snapshot.version,
      schemaVersion: snapshot.schemaVersion,
      state: deepFreezeJson(JSON.parse(stateJson) as Snapshot['state']),
      takenAt: new Date(takenAtMs),
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
    options?: { readonly maxVersion?: number; readonly schemaVersion?: number },
  ): Promise<Snapshot | undefined> {
    this.assertOpen();
    const query = resolveSnapshotQuery(streamId, options);
    const list = this.byStream.get(streamId);
    if (list === undefined) return undefined;
    for (let i = list.length - 1; i >= 0; i--) {
      const s = list[i]!;
      if (s.version <= query.maxVersion && (query.schemaVersion === undefined || s.schemaVersion === query.schemaVersion)) {
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
