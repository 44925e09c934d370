import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { Aggregate, InMemorySnapshotStore, Repository, type Event, type Snapshot, type Snapshottable } from '../src/index.js';
import { SqliteEventStore, SqliteSnapshotStore } from '../src/sqlite/index.js';
import { sqliteTempDir } from './fixtures/sqlite-temp.js';

const temp = sqliteTempDir();
afterAll(() => temp.cleanup());
let n = 0;
const freshFile = () => temp.file(`snapshots-${++n}.db`);

const snap = (streamId: string, version: number, schemaVersion = 1, state: Snapshot['state'] = { v: version }): Snapshot => ({
  streamId,
  version,
  schemaVersion,
  state,
  takenAt: new Date(1_700_000_000_000 + version),
});

async function errorOf(action: () => unknown): Promise<unknown> {
  try {
    await action();
  } catch (error) {
    return error;
  }
  throw new Error('expected the action to fail');
}

describe('SqliteSnapshotStore', () => {
  it('loads the newest snapshot at or below maxVersion, filtered by schema version, like the in-memory store', async () => {
    const sqlite = new SqliteSnapshotStore({ path: freshFile() });
    const memory = new InMemorySnapshotStore();
    const saves = [snap('a', 5), snap('a', 10, 2), snap('a', 3), snap('a', 7), snap('b', 1), snap('a', 7, 1, { replaced: true })];
    for (const s of saves) {
      await sqlite.save(s);
      await memory.save(s);
    }
    const queries: Array<Parameters<SqliteSnapshotStore['load']>[1]> = [
      undefined,
      { maxVersion: 9 },
      { maxVersion: 7 },
      { maxVersion: 6.5 },
      { maxVersion: 2 },
      { schemaVersion: 1 },
      { schemaVersion: 2 },
      { schemaVersion: 3 },
      { maxVersion: 9, schemaVersion: 2 },
      { maxVersion: Number.POSITIVE_INFINITY },
    ];
    for (const query of queries) {
      const fromSqlite = await sqlite.load('a', query);
      const fromMemory = await memory.load('a', query);
      expect(fromSqlite, JSON.stringify(query)).toEqual(fromMemory);
    }
    expect((await sqlite.load('a', { maxVersion: 7 }))?.state).toEqual({ replaced: true });
    expect(await sqlite.load('missing')).toBeUndefined();
    const loaded = await sqlite.load('a');
    expect(Object.isFrozen(loaded)).toBe(true);
    expect(Object.isFrozen(loaded?.state)).toBe(true);
    expect(loaded?.takenAt).toEqual(new Date(1_700_000_000_010));
    await sqlite.close();
  });

  it('does not alias the caller state and rejects invalid snapshots before writing', async () => {
    const store = new SqliteSnapshotStore({ path: ':memory:' });
    const state = { items: [1] };
    await store.save(snap('a', 1, 1, state));
    state.items.push(2);
    expect((await store.load('a'))?.state).toEqual({ items: [1] });
    const cyclic: Record<string, unknown> = {};
    cyclic['self'] = cyclic;
    const bad: Array<[Snapshot, string]> = [
      [snap('', 1), 'INVALID_STREAM_ID'],
      [snap('a', 0), 'INVALID_ARGUMENT'],
      [snap('a', 2.5), 'INVALID_ARGUMENT'],
      [snap('a', 2, 1.5), 'INVALID_ARGUMENT'],
      [{ ...snap('a', 2), takenAt: 'yesterday' as never }, 'INVALID_ARGUMENT'],
      [{ ...snap('a', 2), takenAt: new Date(Number.NaN) }, 'INVALID_ARGUMENT'],
      [snap('a', 2, 1, cyclic as never), 'INVALID_ARGUMENT'],
      [{ ...snap('a', 2), state: undefined as never }, 'INVALID_ARGUMENT'],
    ];
    for (const [snapshot, code] of bad) {
      expect(await errorOf(() => store.save(snapshot)), `${code} case`).toMatchObject({ code });
    }
    expect((await store.load('a'))?.version).toBe(1);
    await store.close();
    expect(await errorOf(() => store.load('a'))).toMatchObject({ code: 'STORE_CLOSED' });
    expect(await errorOf(() => store.save(snap('a', 3)))).toMatchObject({ code: 'STORE_CLOSED' });
  });

  it('shares the event store connection and file, and survives reopening', async () => {
    const file = freshFile();
    const events = new SqliteEventStore({ path: file });
    const snapshots = new SqliteSnapshotStore({ database: events.database });
    await snapshots.save(snap('a', 4));
    await snapshots.close();
    expect(events.database.open).toBe(true);
    await events.close();
    const reopened = new SqliteSnapshotStore({ path: file, synchronous: 'NORMAL' });
    expect((await reopened.load('a'))?.version).toBe(4);
    await reopened.close();
    const raw = new Database(file);
    expect(raw.prepare(`SELECT component, version FROM eventfold_schema ORDER BY component`).raw().all()).toEqual([
      ['events', 1],
      ['snapshots', 1],
    ]);
    raw.close();
  });

  it('serves a Repository: snapshots are taken, loads start from them, and survive a reopen', async () => {
    type Counted = Event<'Counted', { by: number }>;
    class Counter extends Aggregate<Counted> implements Snapshottable<{ total: number }> {
      total = 0;
      applied = 0;
      count(by: number): void {
        this.raise('Counted', { by });
      }
      protected override apply(event: Counted): void {
        this.total += event.data.by;
        this.applied++;
      }
      toSnapshot(): { total: number } {
        return { total: this.total };
      }
      restoreSnapshot(state: { total: number }): void {
        this.total = state.total;
      }
    }
    const file = freshFile();
    const open = () => {
      const events = new SqliteEventStore({ path: file });
      const snapshots = new SqliteSnapshotStore({ database: events.database });
      const repository = new Repository(events, Counter, { snapshots: { store: snapshots, snapshotEvery: 5 } });
      return { events, snapshots, repository };
    };
    const first = open();
    const counter = new Counter('c1');
    for (let i = 1; i <= 12; i++) counter.count(i);
    await first.repository.save(counter);
    expect((await first.snapshots.load('c1'))?.version).toBe(12);
    await first.snapshots.close();
    await first.events.close();

    const second = open();
    const loaded = await second.repository.load('c1');
    expect(loaded.total).toBe(78);
    expect(loaded.version).toBe(12);
    expect(loaded.applied).toBe(0); // restored from the snapshot, no events folded
    const past = await second.repository.load('c1', { version: 4 });
    expect(past.total).toBe(10);
    await second.snapshots.close();
    await second.events.close();
  });
});
