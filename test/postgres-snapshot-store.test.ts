import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import type { Snapshot } from '../src/index.js';
import { describeSnapshotStoreConformance } from '../src/testing/index.js';
import { PostgresEventStore, PostgresSnapshotStore } from '../src/postgres/index.js';
import { DATABASE_URL, pgTestDatabase } from './support/postgres.js';

const db = pgTestDatabase({ max: 4 });
afterAll(() => db.cleanup());

const snap = (streamId: string, version: number, schemaVersion = 1, state: Snapshot['state'] = { v: version }): Snapshot => ({
  streamId,
  version,
  schemaVersion,
  state,
  takenAt: new Date(1_700_000_000_000 + version),
});

describeSnapshotStoreConformance('PostgresSnapshotStore', async () => {
  const events = await PostgresEventStore.create({ pool: db.pool, schema: db.schema('snap') });
  return { events, snapshots: new PostgresSnapshotStore({ pool: events.pool, schema: events.schema }) };
}, { framework: { describe, it } });

describe('PostgresSnapshotStore', () => {
  it('ends only a pool it created', async () => {
    const own = new PostgresSnapshotStore({ connectionString: DATABASE_URL, schema: db.schema('snapown') });
    await own.migrate();
    await own.save(snap('a', 1));
    await own.close();
    const shared = new pg.Pool({ connectionString: DATABASE_URL, max: 1 });
    const borrowed = new PostgresSnapshotStore({ pool: shared, schema: own.schema });
    expect((await borrowed.load('a'))?.version).toBe(1);
    await borrowed.close();
    expect((await shared.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
    await shared.end();
  });
});
