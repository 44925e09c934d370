import fc from 'fast-check';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { Aggregate, InMemorySnapshotStore, Repository, type Event, type Snapshot, type Snapshottable } from '../src/index.js';
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

async function errorOf(action: () => unknown): Promise<unknown> {
  try {
    await action();
  } catch (error) {
    return error;
  }
  throw new Error('expected the action to fail');
}

async function freshStore(): Promise<PostgresSnapshotStore> {
  const store = new PostgresSnapshotStore({ pool: db.pool, schema: db.schema('snap') });
  await store.migrate();
  return store;
}

describe('PostgresSnapshotStore', () => {
  it('behaves like the in-memory store for any sequence of saves and loads', async () => {
    const store = await freshStore();
    let run = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.record({
            stream: fc.constantFrom('a', 'b'),
            version: fc.integer({ min: 1, max: 12 }),
            schemaVersion: fc.integer({ min: -1, max: 2 }),
            state: fc.jsonValue({ maxDepth: 2 }),
          }),
          { maxLength: 12 },
        ),
        fc.array(
          fc.record({
            stream: fc.constantFrom('a', 'b', 'c'),
            maxVersion: fc.option(fc.oneof(fc.integer({ min: -1, max: 14 }), fc.double({ min: 0, max: 14, noNaN: true })), { nil: undefined }),
            schemaVersion: fc.option(fc.integer({ min: -1, max: 2 }), { nil: undefined }),
          }),
          { minLength: 1, maxLength: 8 },
        ),
        async (saves, loads) => {
          // Fresh stream ids per run: the model starts empty each time.
          const prefix = `r${++run}-`;
          const memory = new InMemorySnapshotStore();
          for (const s of saves) {
            const snapshot = snap(prefix + s.stream, s.version, s.schemaVersion, s.state as Snapshot['state']);
            await store.save(snapshot);
            await memory.save(snapshot);
          }
          for (const l of loads) {
            const options = {
              ...(l.maxVersion === undefined ? {} : { maxVersion: l.maxVersion }),
              ...(l.schemaVersion === undefined ? {} : { schemaVersion: l.schemaVersion }),
            };
            expect(await store.load(prefix + l.stream, options)).toEqual(await memory.load(prefix + l.stream, options));
          }
        },
      ),
      { numRuns: 25 },
    );
    await store.close();
  });

  it('returns frozen snapshots with their exact state and time, and does not alias the caller state', async () => {
    const store = await freshStore();
    const state = { items: [1], nested: { z: 1, a: 'é' } };
    await store.save(snap('a', 1, 1, state));
    state.items.push(2);
    const loaded = await store.load('a');
    expect(loaded).toEqual(snap('a', 1, 1, { items: [1], nested: { z: 1, a: 'é' } }));
    expect(Object.keys((loaded?.state as { nested: object }).nested)).toEqual(['z', 'a']);
    expect(Object.isFrozen(loaded)).toBe(true);
    expect(Object.isFrozen((loaded?.state as { items: number[] }).items)).toBe(true);
    expect(await store.load('missing')).toBeUndefined();
    await store.close();
  });

  it('rejects invalid snapshots and arguments before writing', async () => {
    const store = await freshStore();
    await store.save(snap('a', 1));
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
      [snap('a', 2, 1, { n: 10n } as never), 'INVALID_ARGUMENT'],
    ];
    for (const [snapshot, code] of bad) {
      expect(await errorOf(() => store.save(snapshot)), `${code} case`).toMatchObject({ code });
    }
    expect(await errorOf(() => store.load(' a'))).toMatchObject({ code: 'INVALID_STREAM_ID' });
    expect(await errorOf(() => store.load('a', { maxVersion: 'x' as never }))).toMatchObject({ code: 'INVALID_ARGUMENT' });
    expect(await errorOf(() => store.load('a', { schemaVersion: 0.5 }))).toMatchObject({ code: 'INVALID_ARGUMENT' });
    const { rows } = await db.pool.query(`SELECT count(*)::int AS n FROM "${store.schema}".snapshots`);
    expect(rows[0].n).toBe(1);
    await store.close();
    expect(await errorOf(() => store.load('a'))).toMatchObject({ code: 'STORE_CLOSED' });
    expect(await errorOf(() => store.save(snap('a', 3)))).toMatchObject({ code: 'STORE_CLOSED' });
  });

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

  it('serves a Repository next to the event store: snapshots are taken and loads start from them', async () => {
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
    const events = await PostgresEventStore.create({ pool: db.pool, schema: db.schema('repo') });
    const snapshots = new PostgresSnapshotStore({ pool: events.pool, schema: events.schema });
    const repository = new Repository(events, Counter, { snapshots: { store: snapshots, snapshotEvery: 5 } });
    const counter = new Counter('c1');
    for (let i = 1; i <= 12; i++) counter.count(i);
    await repository.save(counter);
    expect((await snapshots.load('c1'))?.version).toBe(12);
    const loaded = await repository.load('c1');
    expect(loaded.total).toBe(78);
    expect(loaded.applied).toBe(0); // restored from the snapshot, no event folded
    loaded.count(1);
    await repository.save(loaded);
    const again = await repository.load('c1');
    expect(again.total).toBe(79);
    expect(again.applied).toBe(1);
    await snapshots.close();
    await events.close();
  });
});
