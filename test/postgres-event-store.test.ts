import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { isEventfoldError, isTransientError, silentLogger, type RecordedEvent } from '../src/index.js';
import { assertValidSchemaName, PostgresCatalog, PostgresEventStore, POSTGRES_SCHEMA_VERSION, postgresSchemaSql } from '../src/postgres/index.js';
import { AfterCommitNotifier } from '../src/postgres/notifier.js';
import { DATABASE_URL, pgTestDatabase } from './support/postgres.js';
import { failure } from './support/failure.js';

const db = pgTestDatabase({ max: 8 });
afterAll(() => db.cleanup());

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Schemas outside the ones test files create for themselves (other test files run at the same
 * time and create and drop theirs), so a change here can only come from this test.
 */
async function schemaCount(): Promise<number> {
  const { rows } = await db.pool.query(
    `SELECT count(*)::int AS n FROM pg_namespace WHERE nspname NOT LIKE 'eft\\_%' AND nspname NOT LIKE 'pg\\_temp%' AND nspname NOT LIKE 'pg\\_toast\\_temp%'`,
  );
  return rows[0].n as number;
}

describe('schema names', () => {
  const refused = [
    'x"; DROP TABLE pg_class; --',
    'Eventfold',
    'event-fold',
    'event fold',
    '1abc',
    '',
    'pg_catalog',
    'a'.repeat(54),
    'events\u0000',
    'évent',
  ];
  for (const schema of refused) {
    it(`refuses ${JSON.stringify(schema)} before connecting or writing anything`, async () => {
      const before = await schemaCount();
      expect(() => new PostgresEventStore({ pool: db.pool, schema })).toThrow(
        expect.objectContaining({ code: 'INVALID_ARGUMENT' }),
      );
      expect(() => postgresSchemaSql(schema)).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
      expect(await schemaCount()).toBe(before);
    });
  }

  it('refuses non-string schema names', () => {
    for (const schema of [42, null, {}, ['eventfold']]) {
      expect(() => assertValidSchemaName(schema)).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
    }
  });

  it('accepts the longest valid name and uses it for tables and the NOTIFY channel', async () => {
    const schema = db.schema('long').padEnd(53, 'x');
    const store = await PostgresEventStore.create({ pool: db.pool, schema });
    try {
      expect(store.schema).toBe(schema);
      expect(store.notifyChannel).toBe(`eventfold_${schema}`);
      await store.append('s', [{ type: 'A', data: 1 }], { expectedVersion: 'no-stream' });
      expect(await store.streamVersion('s')).toBe(1);
    } finally {
      await store.close();
      await db.pool.query(`DROP SCHEMA "${schema}" CASCADE`);
    }
  });

  it('defaults to the schema eventfold', () => {
    const store = new PostgresEventStore({ pool: db.pool });
    expect(store.schema).toBe('eventfold');
  });
});

describe('options', () => {
  it('needs a connection string or a pool, and a positive page size', () => {
    expect(() => new PostgresEventStore({} as never)).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
    expect(() => new PostgresEventStore({ connectionString: '' })).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
    for (const pageSize of [0, -1, 1.5, Number.NaN]) {
      expect(() => new PostgresEventStore({ pool: db.pool, pageSize })).toThrow(
        expect.objectContaining({ code: 'INVALID_ARGUMENT' }),
      );
    }
    expect(() => new PostgresEventStore({ pool: db.pool, limits: { maxEventsPerAppend: 0 } })).toThrow(
      expect.objectContaining({ code: 'INVALID_ARGUMENT' }),
    );
  });
});

describe('migrate()', () => {
  it('is idempotent, also when run concurrently, and keeps the data', async () => {
    const schema = db.schema('migrate');
    const stores = Array.from({ length: 4 }, () => new PostgresEventStore({ pool: db.pool, schema }));
    await Promise.all(stores.map((s) => s.migrate()));
    const store = stores[0]!;
    await store.append('s', [{ type: 'A', data: { n: 1 } }], { expectedVersion: 'no-stream' });
    await store.migrate();
    await stores[1]!.migrate();
    expect((await store.readStream('s').toArray()).map((e) => e.data)).toEqual([{ n: 1 }]);
    const { rows } = await db.pool.query(`SELECT version FROM "${schema}".eventfold_schema`);
    expect(rows).toEqual([{ version: POSTGRES_SCHEMA_VERSION }]);
    const tables = await db.pool.query<{ tablename: string }>(
      'SELECT tablename FROM pg_tables WHERE schemaname = $1',
      [schema],
    );
    expect(tables.rows.map((r) => r.tablename).sort()).toEqual(['eventfold_schema', 'events', 'snapshots', 'streams']);
    await Promise.all(stores.map((s) => s.close()));
  });

  it('without it, calls fail with a SchemaNotMigratedError (not transient) that says to run migrate()', async () => {
    const store = new PostgresEventStore({ pool: db.pool, schema: db.schema('unmigrated') });
    const error = await failure(() => store.append('s', [{ type: 'A', data: 1 }], { expectedVersion: 'any' }));
    expect(error.code).toBe('SCHEMA_NOT_MIGRATED');
    expect(isTransientError(error)).toBe(false);
    expect(error.message).toContain('migrate()');
    expect((await failure(() => store.readAll().toArray())).code).toBe('SCHEMA_NOT_MIGRATED');
  });

  it('refuses a schema migrated by a newer version', async () => {
    const schema = db.schema('newer');
    const store = await PostgresEventStore.create({ pool: db.pool, schema });
    await db.pool.query(`INSERT INTO "${schema}".eventfold_schema (version) VALUES (99)`);
    const error = await failure(() => store.migrate());
    expect(error.code).toBe('SCHEMA_VERSION_UNSUPPORTED');
    expect(isTransientError(error)).toBe(false);
    expect(error.message).toContain('99');
  });

  it('moves a layout-2 schema written by an older eventfold to the current layout, with its versions', async () => {
    const schema = db.schema('layout2');
    const layout2 = readFileSync(new URL('./fixtures/postgres-layout-2.sql', import.meta.url), 'utf8').replaceAll('layout_two', schema);
    await db.pool.query(layout2);
    // Written by layout 2's own functions: versions kept in streams.version too.
    const old = (stream: string, expected: number, n: number) =>
      db.pool.query(`SELECT * FROM "${schema}".append_event($1, $2, $3, 'Added', $4, '{}', now(), false)`, [stream, expected, randomUUID(), JSON.stringify({ n })]);
    await old('user-1', 0, 1);
    await old('user-1', 1, 2);
    await old('user-2', 0, 3);
    const before = await db.pool.query(`SELECT stream_id, version::int FROM "${schema}".streams ORDER BY stream_id`);
    expect(before.rows).toEqual([{ stream_id: 'user-1', version: 2 }, { stream_id: 'user-2', version: 1 }]);
    // This eventfold on the layout-2 schema, before anyone migrates it: reads and appends work.
    const early = new PostgresEventStore({ pool: db.pool, schema });
    try {
      expect(await early.streamVersion('user-2')).toBe(1);
      expect((await early.append('user-2', [{ type: 'Added', data: { n: 4 } }], { expectedVersion: 1 })).version).toBe(2);
    } finally {
      await early.close();
    }

    const store = await PostgresEventStore.create({ pool: db.pool, schema });
    try {
      const columns = await db.pool.query(`SELECT column_name FROM information_schema.columns WHERE table_schema = $1 AND table_name = 'streams'`, [schema]);
      expect(columns.rows).toEqual([{ column_name: 'stream_id' }]);
      const versions = await db.pool.query(`SELECT version FROM "${schema}".eventfold_schema ORDER BY version`);
      expect(versions.rows.map((r) => r.version)).toEqual([2, POSTGRES_SCHEMA_VERSION]);
      expect(await store.streamVersion('user-1')).toBe(2);
      expect(await store.streamVersion('user-2')).toBe(2);
      const stale = await failure(() => store.append('user-1', [{ type: 'Added', data: { n: 9 } }], { expectedVersion: 1 }));
      expect(stale).toMatchObject({ code: 'CONCURRENCY_CONFLICT', streamId: 'user-1', expectedVersion: 1, actualVersion: 2 });
      expect((await store.append('user-1', [{ type: 'Added', data: { n: 5 } }], { expectedVersion: 2 })).version).toBe(3);
      await store.appendMany([
        { streamId: 'user-2', events: [{ type: 'Added', data: { n: 5 } }], expectedVersion: 2 },
        { streamId: 'user-3', events: [{ type: 'Added', data: { n: 6 } }], expectedVersion: 'no-stream' },
      ]);
      const log = await store.readAll().toArray();
      expect(log.map((e) => `${e.streamId}@${e.version}:${(e.data as { n: number }).n}`)).toEqual([
        'user-1@1:1', 'user-1@2:2', 'user-2@1:3', 'user-2@2:4', 'user-1@3:5', 'user-2@3:5', 'user-3@1:6',
      ]);
      const listed = await new PostgresCatalog(store).listStreams();
      expect(listed.map((s) => [s.streamId, s.version])).toEqual([['user-1', 3], ['user-2', 3], ['user-3', 1]]);
      await store.migrate();
      expect(await store.streamVersion('user-3')).toBe(1);
    } finally {
      await store.close();
    }
  });
});

describe('append hooks', () => {
  it('run inside the transaction with the events and the client; their writes commit with the events', async () => {
    const schema = db.schema('hooks');
    const store = await PostgresEventStore.create({ pool: db.pool, schema });
    await db.pool.query(`CREATE TABLE "${schema}".read_model (event_id uuid PRIMARY KEY, stream text, position bigint)`);
    const calls: RecordedEvent[][] = [];
    const remove = store.addAppendHook(async (events, client) => {
      calls.push([...events]);
      for (const e of events) {
        await client.query(`INSERT INTO "${schema}".read_model VALUES ($1, $2, $3)`, [e.eventId, e.streamId, e.position]);
      }
      // Inside the transaction: the events are visible to its own client already.
      const { rows } = await client.query(`SELECT count(*)::int AS n FROM "${schema}".events`);
      expect(rows[0].n).toBeGreaterThanOrEqual(events.length);
    });
    const results = await store.appendMany([
      { streamId: 'a', events: [{ type: 'A', data: 1 }], expectedVersion: 'no-stream' },
      { streamId: 'b', events: [{ type: 'B', data: 2 }, { type: 'B', data: 3 }], expectedVersion: 'no-stream' },
    ]);
    expect(calls).toHaveLength(1);
    expect(calls[0]!.map((e) => e.eventId)).toEqual(results.flatMap((r) => r.events.map((e) => e.eventId)));
    const model = await db.pool.query(`SELECT event_id, stream, position::int FROM "${schema}".read_model ORDER BY position`);
    expect(model.rows).toEqual(
      results.flatMap((r) => r.events.map((e) => ({ event_id: e.eventId, stream: e.streamId, position: e.position }))),
    );

    remove();
    await store.append('a', [{ type: 'A', data: 4 }], { expectedVersion: 1 });
    expect(calls).toHaveLength(1);
    await store.close();
  });

  it('a throwing hook rolls back everything: events, versions, its own writes, and sends no NOTIFY', async () => {
    const schema = db.schema('hookfail');
    const store = await PostgresEventStore.create({ pool: db.pool, schema });
    await db.pool.query(`CREATE TABLE "${schema}".side (n int)`);
    await store.append('s', [{ type: 'A', data: 1 }], { expectedVersion: 'no-stream' });
    const listener = new pg.Client({ connectionString: DATABASE_URL });
    await listener.connect();
    const notices: string[] = [];
    listener.on('notification', (n) => notices.push(n.payload ?? ''));
    await listener.query(`LISTEN "${store.notifyChannel}"`);

    const boom = new Error('read model rejected it');
    const remove = store.addAppendHook(async (_events, client) => {
      await client.query(`INSERT INTO "${schema}".side VALUES (1)`);
      throw boom;
    });
    const headBefore = await store.headPosition();
    const error = await failure(() =>
      store.appendMany([
        { streamId: 's', events: [{ type: 'B', data: 2 }], expectedVersion: 1 },
        { streamId: 't', events: [{ type: 'C', data: 3 }], expectedVersion: 'no-stream' },
      ]),
    );
    expect(error).toBe(boom);
    remove();
    expect(await store.streamVersion('s')).toBe(1);
    expect(await store.streamVersion('t')).toBe(0);
    expect(await store.headPosition()).toBe(headBefore);
    expect((await store.readAll().toArray()).map((e) => e.type)).toEqual(['A']);
    expect((await db.pool.query(`SELECT count(*)::int AS n FROM "${schema}".side`)).rows[0].n).toBe(0);

    // The same append goes through once the hook is gone, and it does notify.
    const ok = await store.append('s', [{ type: 'B', data: 2 }], { expectedVersion: 1 });
    for (let i = 0; i < 100 && notices.length === 0; i++) await sleep(20);
    expect(notices).toEqual([String(ok.position)]);
    await listener.end();
    await store.close();
  });

  it('a rejected expected version in a hooked append rolls back without running the hooks', async () => {
    const store = await PostgresEventStore.create({ pool: db.pool, schema: db.schema('hookcheck') });
    let ran = 0;
    store.addAppendHook(async () => {
      ran++;
    });
    await store.append('s', [{ type: 'A', data: 1 }], { expectedVersion: 'no-stream' });
    const error = await failure(() => store.append('s', [{ type: 'A', data: 2 }], { expectedVersion: 5 }));
    expect(error).toMatchObject({ code: 'CONCURRENCY_CONFLICT', streamId: 's', expectedVersion: 5, actualVersion: 1 });
    expect(ran).toBe(1);
    await store.close();
  });
});

describe('NOTIFY', () => {
  it("'in-transaction': every append notifies eventfold_<schema> with its last position, once committed", async () => {
    const store = await PostgresEventStore.create({ pool: db.pool, schema: db.schema('notify'), notify: 'in-transaction' });
    const listener = new pg.Client({ connectionString: DATABASE_URL });
    await listener.connect();
    const payloads: string[] = [];
    listener.on('notification', (n) => {
      if (n.channel === store.notifyChannel) payloads.push(n.payload ?? '');
    });
    await listener.query(`LISTEN "${store.notifyChannel}"`);
    const a = await store.append('s', [{ type: 'A', data: 1 }, { type: 'A', data: 2 }], { expectedVersion: 'no-stream' });
    const [b] = await store.appendMany([{ streamId: 't', events: [{ type: 'B', data: 3 }], expectedVersion: 'any' }]);
    await store.append('s', [], { expectedVersion: 2 }); // no events: nothing to wake anyone for
    for (let i = 0; i < 100 && payloads.length < 2; i++) await sleep(20);
    await sleep(50);
    expect(payloads).toEqual([String(a.position), String(b!.position)]);
    await listener.end();
    await store.close();
  });
});

describe('NOTIFY modes', () => {
  async function listen(channel: string): Promise<{ payloads: string[]; end(): Promise<void> }> {
    const client = new pg.Client({ connectionString: DATABASE_URL });
    await client.connect();
    const payloads: string[] = [];
    client.on('notification', (n) => {
      if (n.channel === channel) payloads.push(n.payload ?? '');
    });
    await client.query(`LISTEN "${channel}"`);
    return { payloads, end: () => client.end() };
  }

  it("'after-commit' notifies the highest committed position after the commits, coalescing bursts", async () => {
    const store = await PostgresEventStore.create({ pool: db.pool, schema: db.schema('notifyac'), notify: 'after-commit' });
    const listener = await listen(store.notifyChannel);
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) => store.append(`s-${i}`, [{ type: 'A', data: i }], { expectedVersion: 'no-stream' })),
    );
    const last = Math.max(...results.map((r) => r.position));
    await store.close(); // flushes the pending notification
    for (let i = 0; i < 100 && !listener.payloads.includes(String(last)); i++) await sleep(20);
    expect(listener.payloads.length).toBeGreaterThanOrEqual(1);
    expect(listener.payloads.length).toBeLessThanOrEqual(20);
    expect(listener.payloads.map(Number)).toEqual([...listener.payloads.map(Number)].sort((a, b) => a - b));
    expect(listener.payloads[listener.payloads.length - 1]).toBe(String(last));
    await listener.end();
  });

  it("'after-commit' settles when commits report positions out of order (no busy wait on close)", async () => {
    const channel = `eventfold_${db.schema('notifyorder')}`;
    const listener = await listen(channel);
    const notifier = new AfterCommitNotifier(db.pool, channel, silentLogger);
    notifier.committed(5);
    await notifier.flush();
    notifier.committed(3); // a slower append with a lower position finished later: nothing new to say
    notifier.committed(4);
    await notifier.flush();
    notifier.committed(9);
    await notifier.flush();
    for (let i = 0; i < 100 && listener.payloads.length < 2; i++) await sleep(20);
    expect(listener.payloads).toEqual(['5', '9']);
    await listener.end();
  });

  it("'off' sends nothing, and an unknown mode is refused", async () => {
    const store = await PostgresEventStore.create({ pool: db.pool, schema: db.schema('notifyoff'), notify: 'off' });
    const listener = await listen(store.notifyChannel);
    await store.append('s', [{ type: 'A', data: 1 }], { expectedVersion: 'no-stream' });
    await sleep(200);
    expect(listener.payloads).toEqual([]);
    await listener.end();
    await store.close();
    expect(() => new PostgresEventStore({ pool: db.pool, notify: 'sometimes' as never })).toThrow(
      expect.objectContaining({ code: 'INVALID_ARGUMENT' }),
    );
  });
});

describe('withTransaction', () => {
  it('commits what fn wrote, or rolls it back when fn throws', async () => {
    const schema = db.schema('tx');
    const store = await PostgresEventStore.create({ pool: db.pool, schema });
    await db.pool.query(`CREATE TABLE "${schema}".checkpoint (name text PRIMARY KEY, position bigint)`);
    const value = await store.withTransaction(async (client) => {
      await client.query(`INSERT INTO "${schema}".checkpoint VALUES ('p', 7)`);
      return 'done';
    });
    expect(value).toBe('done');
    const boom = new Error('nope');
    const error = await failure(() =>
      store.withTransaction(async (client) => {
        await client.query(`UPDATE "${schema}".checkpoint SET position = 8`);
        throw boom;
      }),
    );
    expect(error).toBe(boom);
    const { rows } = await db.pool.query(`SELECT name, position::int FROM "${schema}".checkpoint`);
    expect(rows).toEqual([{ name: 'p', position: 7 }]);
    expect(store.pool).toBe(db.pool);
    await store.close();
  });
});

describe('close()', () => {
  it('ends the pool it created; then every call rejects with StoreClosedError', async () => {
    const schema = db.schema('close');
    const store = await PostgresEventStore.create({ connectionString: DATABASE_URL, schema, poolConfig: { max: 2 } });
    await store.append('s', [{ type: 'A', data: 1 }], { expectedVersion: 'no-stream' });
    const pool = store.pool;
    await store.close();
    await store.close(); // idempotent
    expect(pool.ended).toBe(true);
    const calls: Array<() => Promise<unknown>> = [
      () => store.append('s', [{ type: 'A', data: 1 }], { expectedVersion: 'any' }),
      () => store.appendMany([{ streamId: 's', events: [], expectedVersion: 'any' }]),
      () => store.readStream('s').toArray(),
      () => store.readAll().toArray(),
      () => store.streamVersion('s'),
      () => store.headPosition(),
      () => store.withTransaction(async () => 1),
      () => store.migrate(),
    ];
    for (const call of calls) expect((await failure(call)).code).toBe('STORE_CLOSED');
  });

  it('leaves a pool that was passed in open', async () => {
    const pool = new pg.Pool({ connectionString: DATABASE_URL, max: 1 });
    const store = await PostgresEventStore.create({ pool, schema: db.schema('closepool') });
    await store.close();
    expect(pool.ended).toBe(false);
    expect((await pool.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
    await pool.end();
  });
});

describe('lost connection', () => {
  /** Terminates every backend of the given application name from a separate connection. */
  async function terminate(applicationName: string): Promise<number> {
    const { rows } = await db.pool.query<{ ok: boolean }>(
      'SELECT pg_terminate_backend(pid) AS ok FROM pg_stat_activity WHERE application_name = $1',
      [applicationName],
    );
    return rows.length;
  }

  it('a connection killed mid-append: StoreUnavailableError with the cause, nothing written, the pool recovers', async () => {
    const schema = db.schema('lost');
    const app = `eventfold-lost-${schema}`;
    const store = await PostgresEventStore.create({ connectionString: DATABASE_URL, schema, poolConfig: { max: 3, application_name: app } });
    await db.pool.query(`CREATE TABLE "${schema}".side (n int)`);
    try {
      await store.append('s', [{ type: 'A', data: 1 }], { expectedVersion: 'no-stream' });
      let entered!: () => void;
      const inHook = new Promise<void>((resolve) => (entered = resolve));
      const remove = store.addAppendHook(async (_events, client) => {
        await client.query(`INSERT INTO "${schema}".side VALUES (1)`);
        entered();
        await client.query('SELECT pg_sleep(30)');
      });
      const pending = failure(() =>
        store.append('s', [{ type: 'B', data: 2 }, { type: 'B', data: 3 }], { expectedVersion: 1 }),
      );
      await inHook;
      expect(await terminate(app)).toBeGreaterThan(0);
      const error = await pending;
      expect(isEventfoldError(error, 'STORE_UNAVAILABLE')).toBe(true);
      expect(error.message).toMatch(/connection/i);
      expect((error as { cause?: unknown }).cause).toBeInstanceOf(Error);
      remove();

      // Nothing half-written, and the next calls work on fresh connections. The kill also ended
      // the pool's idle connections: as documented, the first call after may still meet one of them.
      const version = await store.streamVersion('s').catch(async (first: unknown) => {
        expect(isEventfoldError(first, 'STORE_UNAVAILABLE')).toBe(true);
        return store.streamVersion('s');
      });
      expect(version).toBe(1);
      expect((await db.pool.query(`SELECT count(*)::int AS n FROM "${schema}".side`)).rows[0].n).toBe(0);
      const ok = await store.append('s', [{ type: 'B', data: 2 }], { expectedVersion: 1 });
      expect(ok.version).toBe(2);
      expect((await store.readStream('s').toArray()).map((e) => e.data)).toEqual([1, 2]);
    } finally {
      await store.close();
    }
  });

  it('idle connections killed between calls: at most the next call fails (StoreUnavailableError), then it works', async () => {
    const schema = db.schema('lostidle');
    const app = `eventfold-idle-${schema}`;
    const store = await PostgresEventStore.create({ connectionString: DATABASE_URL, schema, poolConfig: { max: 2, application_name: app } });
    try {
      await Promise.all([store.streamVersion('a'), store.streamVersion('b')]);
      expect(await terminate(app)).toBeGreaterThan(0);
      await sleep(100);
      for (let attempt = 0; attempt < 3; attempt++) {
        try {
          await store.append('s', [{ type: 'A', data: 1 }], { expectedVersion: 'no-stream' });
          break;
        } catch (error) {
          expect(isEventfoldError(error, 'STORE_UNAVAILABLE')).toBe(true);
        }
      }
      expect(await store.streamVersion('s')).toBe(1);
    } finally {
      await store.close();
    }
  });

  it('a connection killed while a readAll query is in flight fails the read clearly; a new read works', async () => {
    const schema = db.schema('lostread');
    const app = `eventfold-read-${schema}`;
    const store = await PostgresEventStore.create({
      connectionString: DATABASE_URL,
      schema,
      pageSize: 10,
      poolConfig: { max: 2, application_name: app },
    });
    const locker = await db.pool.connect();
    try {
      for (let i = 0; i < 5; i++) {
        await store.append(`s-${i}`, Array.from({ length: 20 }, (_, n) => ({ type: 'N', data: n })), { expectedVersion: 'no-stream' });
      }
      // Hold the read's query in flight (it waits for the table lock), then kill its connection.
      await locker.query('BEGIN');
      await locker.query(`LOCK TABLE "${schema}".events IN ACCESS EXCLUSIVE MODE`);
      const reading = failure(() => store.readAll().toArray());
      let waiting = false;
      for (let i = 0; i < 500 && !waiting; i++) {
        const { rows } = await db.pool.query(
          `SELECT 1 FROM pg_stat_activity WHERE application_name = $1 AND wait_event_type = 'Lock'`,
          [app],
        );
        waiting = rows.length > 0;
        if (!waiting) await sleep(10);
      }
      expect(waiting).toBe(true);
      expect(await terminate(app)).toBeGreaterThan(0);
      await locker.query('ROLLBACK');
      const error = await reading;
      expect(isEventfoldError(error, 'STORE_UNAVAILABLE')).toBe(true);
      expect((error as { cause?: unknown }).cause).toBeInstanceOf(Error);
      // The kill also ended the pool's idle connections: the first read after may meet one of them.
      const events = await store.readAll().toArray().catch(async (first: unknown) => {
        expect(isEventfoldError(first, 'STORE_UNAVAILABLE')).toBe(true);
        return store.readAll().toArray();
      });
      expect(events).toHaveLength(100);
    } finally {
      locker.release();
      await store.close();
    }
  });

  it('an unreachable server is a StoreUnavailableError, not a hang or a raw driver error', async () => {
    const store = new PostgresEventStore({
      connectionString: 'postgres://postgres@127.0.0.1:1/postgres',
      poolConfig: { connectionTimeoutMillis: 2000 },
    });
    const error = await failure(() => store.append('s', [{ type: 'A', data: 1 }], { expectedVersion: 'any' }));
    expect(error.code).toBe('STORE_UNAVAILABLE');
    expect(error.message).toContain('unreachable');
    await store.close();
  });
});

describe('stored layout', () => {
  it('keeps data as written (key order too), positions and versions as numbers', async () => {
    const schema = db.schema('layout');
    const store = await PostgresEventStore.create({ pool: db.pool, schema, pageSize: 2 });
    const data = { z: 1, a: { y: [1, 2, { b: null }], x: 'é✓' }, big: 2 ** 53 - 1, small: -1.5e-300 };
    const result = await store.append('s', [{ type: 'A', data, metadata: { correlationId: 'c' } }], { expectedVersion: 'any' });
    const { rows } = await db.pool.query(`SELECT data::text AS data FROM "${schema}".events`);
    expect(rows[0].data).toBe(JSON.stringify(data));
    const [read] = await store.readAll().toArray();
    expect(Object.keys(read!.data as object)).toEqual(['z', 'a', 'big', 'small']);
    expect(read).toEqual(result.events[0]);
    expect(typeof read!.position).toBe('number');
    expect(Object.isFrozen((read!.data as { a: object }).a)).toBe(true);
    await store.close();
  });
});
