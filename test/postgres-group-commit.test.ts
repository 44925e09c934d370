import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { defineProjection, Repository, type AppendResult } from '../src/index.js';
import { addInlinePostgresProjection, PostgresEventStore, type PostgresProjectionContext } from '../src/postgres/index.js';
import { GROUPS_IN_FLIGHT } from '../src/postgres/postgres-event-store.js';
import { Counter } from './support/counter.js';
import { pgTestDatabase } from './support/postgres.js';
import { planArb, runPlan } from './support/serial-order.js';

const db = pgTestDatabase({ max: 12 });
afterAll(() => db.cleanup());

const one = (type = 'A') => [{ type, data: {} }];
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function freshStore(options: Partial<ConstructorParameters<typeof PostgresEventStore>[0]> = {}): Promise<PostgresEventStore> {
  return PostgresEventStore.create({ pool: db.pool, schema: db.schema('group'), ...options } as ConstructorParameters<typeof PostgresEventStore>[0]);
}

/**
 * Appends made first take the commit slots on their own; appends made in the same turn after them
 * queue, and go together in one transaction when a slot frees.
 */
function withSlotsTaken(
  store: PostgresEventStore,
  grouped: () => Promise<unknown>[],
): { ahead: Promise<AppendResult>[]; grouped: Promise<unknown>[]; settled: Promise<PromiseSettledResult<unknown>[]> } {
  const ahead = Array.from({ length: GROUPS_IN_FLIGHT }, (_, i) => store.append(`ahead-${i}-${Math.random()}`, one(), { expectedVersion: 'no-stream' }));
  const queued = grouped();
  // Handlers attached at once: a grouped append may fail while the test still awaits something else.
  return { ahead, grouped: queued, settled: Promise.allSettled(queued) };
}

describe('PostgresEventStore group commit', () => {
  it('is on by default: appends that arrive while commits are in flight share one transaction', async () => {
    const store = await freshStore();
    try {
      const { ahead, grouped } = withSlotsTaken(store, () =>
        Array.from({ length: 10 }, (_, i) => store.append(`s-${i}`, [{ type: 'A', data: { i } }], { expectedVersion: 'no-stream' })),
      );
      const results = (await Promise.all([...ahead, ...grouped])) as AppendResult[];
      expect(results.map((r) => r.version)).toEqual(Array(10 + GROUPS_IN_FLIGHT).fill(1));
      expect(store.groupCommitStats).toMatchObject({ appends: 10 + GROUPS_IN_FLIGHT, largestGroup: 10 });
      // One transaction: consecutive positions in submission order, and one xid.
      const positions = results.slice(GROUPS_IN_FLIGHT).map((r) => r.position);
      expect(positions).toEqual(positions.map((_, i) => positions[0]! + i));
      const xids = await db.pool.query(`SELECT DISTINCT transaction_id::text FROM "${store.schema}".events WHERE stream_id LIKE 's-%'`);
      expect(xids.rowCount).toBe(1);
    } finally {
      await store.close();
    }
  });

  it('switched off, every append is its own transaction', async () => {
    const store = await freshStore({ groupCommit: false });
    try {
      await Promise.all(Array.from({ length: 6 }, (_, i) => store.append(`s-${i}`, one(), { expectedVersion: 'no-stream' })));
      expect(store.groupCommitStats).toBeUndefined();
      const xids = await db.pool.query(`SELECT DISTINCT transaction_id FROM "${store.schema}".events`);
      expect(xids.rowCount).toBe(6);
    } finally {
      await store.close();
    }
  });

  it('switched off, appends to one stream made without waiting keep their call order; other streams do not wait', async () => {
    const store = await freshStore({ groupCommit: false });
    try {
      for (let round = 0; round < 5; round++) {
        const calls = Array.from({ length: 12 }, (_, i) =>
          i % 3 === 2
            ? store.appendMany([
                { streamId: `other-${round}-${i}`, events: one(), expectedVersion: 'no-stream' },
                { streamId: `ordered-${round}`, events: [{ type: 'N', data: { i } }], expectedVersion: 'any' },
              ])
            : store.append(`ordered-${round}`, [{ type: 'N', data: { i } }], { expectedVersion: 'any' }),
        );
        await Promise.all(calls);
        const order = (await store.readStream(`ordered-${round}`).toArray()).map((e) => (e.data as { i: number }).i);
        expect(order).toEqual(Array.from({ length: 12 }, (_, i) => i));
      }
      // A failed append does not hold up the ones behind it, and neither stream waits for the other.
      const failing = store.append('ordered-0', one(), { expectedVersion: 3 });
      const next = store.append('ordered-0', one('After'), { expectedVersion: 'any' });
      await expect(failing).rejects.toMatchObject({ code: 'CONCURRENCY_CONFLICT' });
      await expect(next).resolves.toMatchObject({ version: 13 });
      // close() lets the calls already made finish, in order.
      const pending = Array.from({ length: 4 }, (_, i) => store.append('closing', [{ type: 'N', data: { i } }], { expectedVersion: 'any' }));
      await store.close();
      expect((await Promise.all(pending)).map((r) => r.version)).toEqual([1, 2, 3, 4]);
    } finally {
      await store.close();
    }
  });

  it('a conflict fails only its own append (an appendMany as a whole); its neighbours commit', async () => {
    const store = await freshStore();
    try {
      await store.append('taken', one(), { expectedVersion: 'no-stream' });
      const { ahead, settled: settling } = withSlotsTaken(store, () => [
        store.append('free-1', one(), { expectedVersion: 'no-stream' }),
        store.append('taken', one('B'), { expectedVersion: 'no-stream' }),
        store.appendMany([
          { streamId: 'free-2', events: one(), expectedVersion: 'no-stream' },
          { streamId: 'taken-too', events: one(), expectedVersion: 3 },
        ]),
        store.append('free-3', one(), { expectedVersion: 'stream-exists' }),
        store.append('free-4', one(), { expectedVersion: 'any' }),
      ]);
      await Promise.all(ahead);
      const settled = await settling;
      expect(settled.map((s) => s.status)).toEqual(['fulfilled', 'rejected', 'rejected', 'rejected', 'fulfilled']);
      expect((settled[1] as PromiseRejectedResult).reason).toMatchObject({ code: 'STREAM_ALREADY_EXISTS', streamId: 'taken', actualVersion: 1 });
      expect((settled[2] as PromiseRejectedResult).reason).toMatchObject({ code: 'CONCURRENCY_CONFLICT', streamId: 'taken-too', actualVersion: 0 });
      expect((settled[3] as PromiseRejectedResult).reason).toMatchObject({ code: 'CONCURRENCY_CONFLICT', streamId: 'free-3', actualVersion: 0 });
      expect(store.groupCommitStats?.largestGroup).toBe(5);
      for (const [id, version] of [['free-1', 1], ['free-2', 0], ['taken', 1], ['taken-too', 0], ['free-3', 0], ['free-4', 1]] as const) {
        expect(await store.streamVersion(id), id).toBe(version);
      }
      // Positions stay dense: failed appends drew none.
      const log = await store.readAll().toArray();
      expect(log.map((e) => e.position)).toEqual(log.map((_, i) => i + 1));
    } finally {
      await store.close();
    }
  });

  it('a hook that throws for one append takes back that append only: its events, versions and hook writes', async () => {
    const store = await freshStore();
    try {
      await db.pool.query(`CREATE TABLE "${store.schema}".seen (stream_id text NOT NULL)`);
      await store.append('poison-old', one(), { expectedVersion: 'no-stream' });
      store.addAppendHook(async (events, client) => {
        await client.query(`INSERT INTO "${store.schema}".seen VALUES ($1)`, [events[0]!.streamId]);
        if (events.some((e) => e.streamId.startsWith('poison'))) throw new Error('hook refuses poison');
      });
      const { ahead, settled: settling } = withSlotsTaken(store, () => [
        store.append('a', one(), { expectedVersion: 'no-stream' }),
        store.append('poison-new', one(), { expectedVersion: 'no-stream' }),
        store.appendMany([
          { streamId: 'b', events: one(), expectedVersion: 'no-stream' },
          { streamId: 'poison-old', events: [...one(), ...one()], expectedVersion: 1 },
        ]),
        store.append('c', one(), { expectedVersion: 'no-stream' }),
      ]);
      await Promise.all(ahead);
      const settled = await settling;
      expect(settled.map((s) => s.status)).toEqual(['fulfilled', 'rejected', 'rejected', 'fulfilled']);
      expect(String((settled[1] as PromiseRejectedResult).reason)).toContain('hook refuses poison');
      expect(store.groupCommitStats?.largestGroup).toBe(4);
      const seen = await db.pool.query<{ stream_id: string }>(`SELECT stream_id FROM "${store.schema}".seen`);
      expect(seen.rows.map((r) => r.stream_id).filter((id) => !id.startsWith('ahead')).sort()).toEqual(['a', 'c']);
      for (const [id, version] of [['a', 1], ['poison-new', 0], ['b', 0], ['poison-old', 1], ['c', 1]] as const) {
        expect(await store.streamVersion(id), id).toBe(version);
      }
      const log = await store.readAll().toArray();
      expect(log.filter((e) => ['poison-new', 'b'].includes(e.streamId))).toEqual([]);
      expect(log.filter((e) => e.streamId === 'poison-old').map((e) => e.version)).toEqual([1]);
      // The stream registry holds the streams with events, not the ones created and taken back.
      const registry = await db.pool.query<{ stream_id: string }>(
        `SELECT stream_id FROM "${store.schema}".streams WHERE stream_id NOT LIKE 'ahead%' ORDER BY stream_id`,
      );
      expect(registry.rows.map((r) => r.stream_id)).toEqual(['a', 'c', 'poison-old']);
      // The streams taken back are writable at their old versions.
      await store.appendMany([
        { streamId: 'b', events: one(), expectedVersion: 'no-stream' },
        { streamId: 'poison-old', events: one(), expectedVersion: 1 },
      ]).catch((error: unknown) => expect(String(error)).toContain('hook refuses poison'));
    } finally {
      await store.close();
    }
  });

  it('an inline projection handler that throws for one append fails only that append', async () => {
    const store = await freshStore();
    try {
      await addInlinePostgresProjection(
        store,
        defineProjection<{ type: 'Added'; data: { n: number } }, PostgresProjectionContext>({
          name: 'totals',
          setup: async ({ client }) => {
            await client.query(`CREATE TABLE IF NOT EXISTS "${store.schema}".totals (stream_id text PRIMARY KEY, n integer NOT NULL)`);
          },
          handlers: {
            Added: async (event, { client }) => {
              if (event.data.n < 0) throw new Error('negative');
              await client.query(`INSERT INTO "${store.schema}".totals VALUES ($1, $2)`, [event.streamId, event.data.n]);
            },
          },
        }),
      );
      const { ahead, settled: settling } = withSlotsTaken(store, () =>
        [1, -1, 2].map((n, i) => store.append(`t-${i}`, [{ type: 'Added', data: { n } }], { expectedVersion: 'no-stream' })),
      );
      await Promise.all(ahead);
      const settled = await settling;
      expect(settled.map((s) => s.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
      expect(store.groupCommitStats?.largestGroup).toBe(3);
      const totals = await db.pool.query(`SELECT stream_id, n FROM "${store.schema}".totals ORDER BY stream_id`);
      expect(totals.rows).toEqual([
        { stream_id: 't-0', n: 1 },
        { stream_id: 't-2', n: 2 },
      ]);
      expect(await store.streamVersion('t-1')).toBe(0);
    } finally {
      await store.close();
    }
  });

  it('a connection lost during a group commit rejects every caller of that group with StoreUnavailableError, and none is stored', async () => {
    const store = await freshStore();
    const holder = await db.pool.connect();
    try {
      // Another transaction holds the lock of stream 'x', so the group that contains 'x' waits.
      await holder.query('BEGIN');
      await holder.query(`SELECT * FROM "${store.schema}".append_event('x', -1, gen_random_uuid(), 'Held', '{}', '{}', now(), false)`);
      const { ahead, settled: settling } = withSlotsTaken(store, () => [
        store.append('x', one(), { expectedVersion: 'any' }),
        store.append('z1', one(), { expectedVersion: 'no-stream' }),
        store.appendMany([{ streamId: 'z2', events: one(), expectedVersion: 'no-stream' }, { streamId: 'z3', events: one(), expectedVersion: 'any' }]),
      ]);
      await Promise.all(ahead);
      let pid: number | undefined;
      for (let attempt = 0; attempt < 400 && pid === undefined; attempt++) {
        const waiting = await db.pool.query<{ pid: number }>(
          `SELECT pid FROM pg_stat_activity WHERE state = 'active' AND wait_event_type = 'Lock' AND query LIKE $1`,
          [`%"${store.schema}".append_group%`],
        );
        pid = waiting.rows[0]?.pid;
        if (pid === undefined) await sleep(25);
      }
      expect(pid, 'the group is waiting for the held lock').toBeDefined();
      await db.pool.query('SELECT pg_terminate_backend($1)', [pid]);
      const settled = await settling;
      for (const outcome of settled) {
        expect(outcome.status).toBe('rejected');
        expect((outcome as PromiseRejectedResult).reason).toMatchObject({ code: 'STORE_UNAVAILABLE' });
      }
      await holder.query('ROLLBACK');
      for (const id of ['x', 'z1', 'z2', 'z3']) expect(await store.streamVersion(id), id).toBe(0);
      // The store carries on.
      expect((await store.append('z1', one(), { expectedVersion: 'no-stream' })).version).toBe(1);
    } finally {
      holder.release();
      await store.close();
    }
  });

  it('close() waits for appends already accepted', async () => {
    const store = await freshStore();
    const pending = Array.from({ length: 6 }, (_, i) => store.append(`c-${i}`, one(), { expectedVersion: 'no-stream' }));
    await store.close();
    expect((await Promise.all(pending)).map((r) => r.version)).toEqual(Array(6).fill(1));
  });

  it('Repository.save and update from concurrent callers are grouped and keep their checks', async () => {
    const store = await freshStore();
    try {
      const repository = new Repository(store, Counter);
      await Promise.all(
        Array.from({ length: 6 }, (_, i) => {
          const counter = new Counter(`c${i}`);
          counter.add(1);
          return repository.save(counter);
        }),
      );
      await Promise.all(Array.from({ length: 12 }, (_, i) => repository.update(`c${i % 6}`, (c) => c.add(1), { retries: 20 })));
      for (let i = 0; i < 6; i++) expect((await repository.load(`c${i}`)).total).toBe(3);
      expect(store.groupCommitStats!.largestGroup).toBeGreaterThan(1);
    } finally {
      await store.close();
    }
  });

  it('property: concurrent conflicting and independent appends come out as some serial order', async () => {
    const schema = db.schema('gprop');
    const store = await PostgresEventStore.create({ pool: db.pool, schema });
    const reader = new PostgresEventStore({ pool: db.pool, schema, groupCommit: false });
    let run = 0;
    let conflicts = 0;
    try {
      await fc.assert(
        fc.asyncProperty(planArb, async (plan) => {
          conflicts += await runPlan(store, reader, `p${++run}`, plan);
        }),
        { numRuns: 60 },
      );
      expect(store.groupCommitStats!.largestGroup).toBeGreaterThan(2);
      expect(conflicts).toBeGreaterThan(0);
    } finally {
      await store.close();
      await reader.close();
    }
  }, 120_000);

  it('appends to one stream made without waiting for each other commit in the order they were made', async () => {
    const store = await freshStore();
    try {
      for (let round = 0; round < 5; round++) {
        const stream = `pipelined-${round}`;
        // Several commits run at once on PostgreSQL: a stream's appends must not race each other.
        const others = Array.from({ length: 6 }, (_, i) => store.append(`other-${round}-${i}`, one(), { expectedVersion: 'any' }));
        const mine = Array.from({ length: 20 }, (_, i) => store.append(stream, [{ type: 'A', data: i }], { expectedVersion: 'any' }));
        await Promise.all([...others, ...mine]);
        expect((await store.readStream(stream).toArray()).map((e) => e.data)).toEqual(Array.from({ length: 20 }, (_, i) => i));
      }
    } finally {
      await store.close();
    }
  });
});
