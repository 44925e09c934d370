import { EVENT_MIGRATIONS } from '../src/sqlite/event-schema.js';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import type { Snapshot } from '../src/index.js';
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
}, { framework: { describe, it } });
describeSnapshotStoreConformance('SqliteSnapshotStore (:memory:)', () => {
  const events = new SqliteEventStore({ path: ':memory:' });
  return { events, snapshots: new SqliteSnapshotStore({ database: events.database }) };
}, { framework: { describe, it } });

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
      ['events', EVENT_MIGRATIONS.length],
      ['snapshots', 1],
    ]);
    raw.close();
  });
});
