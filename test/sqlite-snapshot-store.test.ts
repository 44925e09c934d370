import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { Aggregate, Repository, type Event, type Snapshot, type Snapshottable } from '../src/index.js';
import { describeSnapshotStoreConformance } from '../src/testing/index.js';
import { SqliteEventStore, SqliteSnapshotStore } from '../src/sqlite/index.js';
import { sqliteTempDir } from './fixtures/sqlite-temp.js';

const temp = sqliteTempDir();
afterAll(() => temp.cleanup());
let n = 0;
const freshFile = () => temp.file(`snapshots-${++n}.db`);

const snap = (streamId: string, version: number): Snapshot => ({
  streamId,
  version,
  schemaVersion: 1,
  state: { v: version },
  takenAt: new Date(1_700_000_000_000 + version),
});

describeSnapshotStoreConformance('SqliteSnapshotStore (file)', () => {
  const events = new SqliteEventStore({ path: freshFile() });
  return { events, snapshots: new SqliteSnapshotStore({ database: events.database }) };
});
describeSnapshotStoreConformance('SqliteSnapshotStore (:memory:)', () => {
  const events = new SqliteEventStore({ path: ':memory:' });
  return { events, snapshots: new SqliteSnapshotStore({ database: events.database }) };
});

describe('SqliteSnapshotStore', () => {
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
