// Timeouts and keepalive of the pools the PostgreSQL adapter creates, against the real server: a
// connection that stops answering without a reset (a TCP proxy that blackholes it) fails a read or
// an append within query_timeout with a typed transient error, the pool recovers once packets flow
// again, and migrate() (which may wait for another process's migration) is exempt.
import { afterAll, describe, expect, it } from 'vitest';
import { isTransientError } from '../src/index.js';
import { POSTGRES_POOL_DEFAULTS, PostgresEventStore } from '../src/postgres/index.js';
import { LOCK_CLASS, schemaLockKey } from '../src/postgres/schema-name.js';
import { GROUPS_IN_FLIGHT } from '../src/postgres/postgres-event-store.js';
import { DATABASE_URL, pgTestDatabase } from './support/postgres.js';
import { PostgresProjectionRunner } from '../src/postgres/projections.js';
import { postgresAccountsProjection, readPostgresAccounts } from './fixtures/projection-postgres-accounts.js';
import { failure, type Failure } from './support/failure.js';
import { errorRecorder, expectFoldedAccounts, seedAccounts } from './support/projection-accounts.js';
import { hostAndPort, startTcpProxy, viaPort } from './support/tcp-proxy.js';

const db = pgTestDatabase({ max: 4 });
// The server ends a session left idle in a transaction (its client vanished) after this long.
const IDLE_IN_TRANSACTION = { idle_in_transaction_session_timeout: 2_000 };
const closers: (() => Promise<unknown>)[] = [];
afterAll(async () => {
  for (const close of closers.reverse()) await close().catch(() => undefined);
  await db.cleanup();
});

/** A store through a proxy (short timeouts) over a schema seeded through the direct pool. */
async function blackholeSetup(tag: string) {
  const direct = await PostgresEventStore.create({ pool: db.pool, schema: db.schema(tag) });
  closers.push(() => direct.close());
  await direct.append('s-1', [{ type: 'A', data: 1 }, { type: 'B', data: 2 }], { expectedVersion: 'no-stream' });
  const proxy = await startTcpProxy(hostAndPort(DATABASE_URL));
  closers.push(() => proxy.close());
  const store = new PostgresEventStore({
    connectionString: viaPort(DATABASE_URL, proxy.port),
    schema: direct.schema,
    // No NOTIFY after appends: it would hold the idle connection the tests blackhole.
    notify: 'off',
    poolConfig: { max: 2, query_timeout: 800, connectionTimeoutMillis: 800 },
    logger: { debug() {}, info() {}, warn() {}, error() {} },
  });
  closers.push(() => store.close());
  return { direct, proxy, store };
}

async function timedFailure(call: () => Promise<unknown>): Promise<{ error: Failure; ms: number }> {
  const started = Date.now();
  const error = await failure(call);
  return { error, ms: Date.now() - started };
}

describe('PostgreSQL connection timeouts', () => {
  it('pools created from a connection string get query, connect and keepalive defaults, each overridable', async () => {
    const plain = new PostgresEventStore({ connectionString: DATABASE_URL });
    const tuned = new PostgresEventStore({ connectionString: DATABASE_URL, poolConfig: { query_timeout: 5_000, keepAlive: false } });
    closers.push(() => plain.close(), () => tuned.close());
    expect(plain.pool.options).toMatchObject({
      query_timeout: 60_000,
      connectionTimeoutMillis: 15_000,
      keepAlive: true,
      keepAliveInitialDelayMillis: 10_000,
      idle_in_transaction_session_timeout: 60_000,
    });
    expect(tuned.pool.options).toMatchObject({ query_timeout: 5_000, connectionTimeoutMillis: 15_000, keepAlive: false });
    expect(POSTGRES_POOL_DEFAULTS.query_timeout).toBe(60_000);
    // A pool you own is left as it is.
    const own = new PostgresEventStore({ pool: db.pool });
    expect(own.pool.options.query_timeout).toBeUndefined();
  });

  it('a read through a blackholed connection fails within query_timeout as STORE_TIMEOUT, and the pool recovers', async () => {
    const { proxy, store } = await blackholeSetup('bhread');
    expect(await store.readStream('s-1').toArray()).toHaveLength(2); // leaves an idle pooled connection
    proxy.blackhole();
    const stuck = await timedFailure(() => store.readStream('s-1').toArray());
    expect(stuck.error.code).toBe('STORE_TIMEOUT');
    expect(isTransientError(stuck.error)).toBe(true);
    expect(stuck.error.message).toMatch(/query_timeout/);
    expect(stuck.ms).toBeGreaterThanOrEqual(700);
    expect(stuck.ms).toBeLessThan(3_000);
    // A new connection into the blackhole never completes its handshake: connect timeout, transient too.
    const connecting = await timedFailure(() => store.headPosition());
    expect(['STORE_UNAVAILABLE', 'STORE_TIMEOUT']).toContain(connecting.error.code);
    expect(isTransientError(connecting.error)).toBe(true);
    expect(connecting.ms).toBeLessThan(3_000);
    proxy.restore();
    expect(await store.readStream('s-1').toArray()).toHaveLength(2);
    expect(await store.headPosition()).toBeGreaterThan(0);
  });

  it('an append through a blackholed connection fails within query_timeout, writes nothing, and the next append works', async () => {
    const { direct, proxy, store } = await blackholeSetup('bhappend');
    await store.append('s-2', [{ type: 'A', data: 0 }], { expectedVersion: 'no-stream' });
    proxy.blackhole();
    const stuck = await timedFailure(() => store.append('s-2', [{ type: 'A', data: 1 }], { expectedVersion: 1 }));
    expect(stuck.error.code).toBe('STORE_TIMEOUT');
    expect(isTransientError(stuck.error)).toBe(true);
    expect(stuck.ms).toBeLessThan(3_000);
    expect(await direct.streamVersion('s-2')).toBe(1);
    proxy.restore();
    await store.append('s-2', [{ type: 'A', data: 2 }], { expectedVersion: 1 });
    expect((await direct.readStream('s-2').toArray()).map((e) => e.data)).toEqual([0, 2]);
  });

  it('a hooked append (BEGIN … COMMIT on one client) blackholed mid-transaction fails within query_timeout and rolls back', async () => {
    const { direct, proxy, store } = await blackholeSetup('bhhook');
    let calls = 0;
    store.addAppendHook(async (_events, client) => {
      // The blackhole falls between the append's statement and the hook's own.
      if (++calls === 2) proxy.blackhole();
      await client.query('SELECT 1');
    });
    await store.append('s-3', [{ type: 'A', data: 0 }], { expectedVersion: 'no-stream' });
    const stuck = await timedFailure(() => store.append('s-3', [{ type: 'A', data: 1 }], { expectedVersion: 1 }));
    expect(stuck.error.code).toBe('STORE_TIMEOUT');
    expect(stuck.ms).toBeLessThan(3_000);
    proxy.restore();
    // The server rolls the transaction back once the connection is gone (a blackholed one only
    // when the server notices): poll until the stream is writable again.
    await expect.poll(async () => store.append('s-3', [{ type: 'A', data: 2 }], { expectedVersion: 1 }).then(() => 'ok', (e: { code?: string }) => e.code), { timeout: 15_000, interval: 200 }).toBe('ok');
    expect((await direct.readStream('s-3').toArray()).map((e) => e.data)).toEqual([0, 2]);
  });

  it('an appender partitioned mid-transaction (its goodbye lost too) holds other appenders and readers back only until idle_in_transaction_session_timeout', async () => {
    const direct = await PostgresEventStore.create({ pool: db.pool, schema: db.schema('partition') });
    closers.push(() => direct.close());
    await direct.append('s-1', [{ type: 'A', data: 0 }], { expectedVersion: 'no-stream' });
    const proxy = await startTcpProxy(hostAndPort(DATABASE_URL));
    closers.push(() => proxy.close());
    const store = new PostgresEventStore({
      connectionString: viaPort(DATABASE_URL, proxy.port),
      schema: direct.schema,
      notify: 'off',
      poolConfig: { max: 2, query_timeout: 800, connectionTimeoutMillis: 800, ...IDLE_IN_TRANSACTION },
      logger: { debug() {}, info() {}, warn() {}, error() {} },
    });
    closers.push(() => store.close());
    let calls = 0;
    store.addAppendHook(async (_events, client) => {
      // Between the append's statement (positions drawn, locks held) and the hook's own.
      if (++calls === 1) proxy.partition();
      await client.query('SELECT 1');
    });
    const stuck = await timedFailure(() => store.append('s-1', [{ type: 'A', data: 1 }], { expectedVersion: 1 }));
    expect(stuck.error.code).toBe('STORE_TIMEOUT');
    // The position lock is a session lock held for microseconds: appenders to other streams go on at once.
    const started = Date.now();
    const other = await direct.append('s-2', [{ type: 'A', data: 2 }], { expectedVersion: 'no-stream' });
    expect(Date.now() - started).toBeLessThan(500);
    // Readers cannot pass the stuck transaction's positions until the server ends its session.
    await expect
      .poll(async () => (await direct.readAll().toArray()).map((e) => e.position), { timeout: 10_000, interval: 200 })
      .toContain(other.position);
    await direct.append('s-1', [{ type: 'A', data: 3 }], { expectedVersion: 1 });
    expect((await direct.readStream('s-1').toArray()).map((e) => e.data)).toEqual([0, 3]);
  }, 20_000);

  it('a projection runner through a blackholed connection reports transient faults, then catches up once packets flow', async () => {
    const { direct, proxy, store } = await blackholeSetup('bhrunner');
    await seedAccounts(direct, 300);
    const rec = errorRecorder();
    const runner = new PostgresProjectionRunner(store, postgresAccountsProjection({ schema: direct.schema, delayMs: 1 }), {
      batchSize: 20,
      pollIntervalMs: 100,
      retry: { maxAttempts: 100, initialDelayMs: 20, maxDelayMs: 300 },
      onError: rec.onError,
    });
    closers.push(() => runner.stop());
    await runner.start();
    await expect.poll(() => runner.checkpoint?.position ?? 0, { timeout: 30_000 }).toBeGreaterThan(20);
    proxy.blackhole();
    await expect.poll(() => rec.errors.length, { timeout: 15_000 }).toBeGreaterThan(1);
    expect(runner.state).not.toBe('failed');
    expect(rec.errors.every((e) => e.info.transient && e.info.willRetry)).toBe(true);
    expect(rec.errors.some((e) => /Query read timeout|query_timeout|timeout expired|timeout exceeded/.test(e.message))).toBe(true);
    proxy.restore();
    await runner.waitUntilCaughtUp({ timeoutMs: 60_000 });
    await runner.stop();
    await expectFoldedAccounts(direct, () => readPostgresAccounts(db.pool, direct.schema));
  }, 90_000);

  it('a group whose statement outlives query_timeout is not retried member by member: it may still commit', async () => {
    // Hold the events table so every append waits on the server past query_timeout; the waiting
    // statements still commit once it is released (the server does not notice the client left).
    const direct = await PostgresEventStore.create({ pool: db.pool, schema: db.schema('grouptimeout') });
    closers.push(() => direct.close());
    const store = new PostgresEventStore({
      connectionString: DATABASE_URL,
      schema: direct.schema,
      notify: 'off',
      poolConfig: { max: 12, query_timeout: 600 },
      logger: { debug() {}, info() {}, warn() {}, error() {} },
    });
    closers.push(() => store.close());
    const holder = await db.pool.connect();
    let settled: PromiseSettledResult<unknown>[];
    try {
      await holder.query('BEGIN');
      await holder.query(`LOCK TABLE "${direct.schema}".events IN ACCESS EXCLUSIVE MODE`);
      // The first appends take the commit slots alone; the next ones queue and go as one group.
      const ahead = Array.from({ length: GROUPS_IN_FLIGHT }, (_, i) => store.append(`ahead-${i}`, [{ type: 'A', data: i }], { expectedVersion: 'any' }));
      const grouped = [
        store.append('g-any', [{ type: 'A', data: 1 }], { expectedVersion: 'any' }),
        store.append('g-new', [{ type: 'A', data: 2 }], { expectedVersion: 'no-stream' }),
        store.append('g-any-2', [{ type: 'A', data: 3 }], { expectedVersion: 'any' }),
      ];
      const all = Promise.allSettled(grouped);
      void Promise.allSettled(ahead);
      await new Promise((resolve) => setTimeout(resolve, 1_500));
      await holder.query('COMMIT');
      settled = await all;
      await Promise.allSettled(ahead);
    } finally {
      holder.release();
    }
    expect(store.groupCommitStats!.largestGroup).toBe(3);
    // Let any statement still running on the server finish before counting.
    await new Promise((resolve) => setTimeout(resolve, 500));
    for (const [i, stream] of ['g-any', 'g-new', 'g-any-2'].entries()) {
      const outcome = settled[i]!;
      // Never written twice; a caller told it failed was told the outcome is unknown (a timeout), not a conflict.
      expect(await direct.streamVersion(stream)).toBeLessThanOrEqual(1);
      if (outcome.status === 'rejected') expect((outcome.reason as { code?: string }).code).toBe('STORE_TIMEOUT');
      else expect(await direct.streamVersion(stream)).toBe(1);
    }
  }, 20_000);

  it.each([
    ['several events (append_events)', false, 2],
    ['one event (append_event)', false, 1],
    ['a group (append_group)', true, 1],
  ] as const)('an append cancelled the instant it is granted the position lock leaves no lock behind: %s', async (_name, grouped, events) => {
    const direct = await PostgresEventStore.create({ pool: db.pool, schema: db.schema('cancelgrant') });
    closers.push(() => direct.close());
    const app = `eventfold-cancel-${Math.random().toString(36).slice(2)}`;
    const store = new PostgresEventStore({
      connectionString: DATABASE_URL,
      schema: direct.schema,
      notify: 'off',
      groupCommit: grouped,
      poolConfig: { max: 8, application_name: app },
      logger: { debug() {}, info() {}, warn() {}, error() {} },
    });
    closers.push(() => store.close());
    const key = schemaLockKey(direct.schema);
    const holder = await db.pool.connect();
    try {
      await holder.query('SELECT pg_advisory_lock($1, $2)', [LOCK_CLASS.position, key]);
      const batch = (stream: string) => Array.from({ length: events }, (_, i) => ({ type: 'A', data: { stream, i } }));
      // With group commit, the first append takes a slot alone; the next ones wait behind it and go as one group.
      const appends = (grouped ? ['g-0', 'g-1', 'g-2', 'g-3', 'g-4', 'g-5'] : ['s-0']).map((stream) =>
        store.append(stream, batch(stream), { expectedVersion: 'any' }).then(() => 'ok', (e: { code?: string }) => e.code ?? 'error'),
      );
      const waiting = async () =>
        (await db.pool.query<{ pid: number }>(`SELECT pid FROM pg_stat_activity WHERE application_name = $1 AND wait_event_type = 'Lock'`, [app])).rows.map((r) => r.pid);
      await expect.poll(waiting, { timeout: 5_000, interval: 20 }).not.toHaveLength(0);
      // Granted and cancelled at once: the waiter wakes holding the lock, with the cancel pending.
      for (let round = 0; round < 8; round++) {
        const pids = await waiting();
        if (pids.length === 0) break;
        await holder.query('SELECT pg_advisory_unlock($1, $2), pg_cancel_backend($3)', [LOCK_CLASS.position, key, pids[0]]);
        await new Promise((resolve) => setTimeout(resolve, 50));
        await holder.query('SELECT pg_advisory_lock($1, $2)', [LOCK_CLASS.position, key]);
      }
      await holder.query('SELECT pg_advisory_unlock($1, $2)', [LOCK_CLASS.position, key]);
      const outcomes = await Promise.all(appends);
      expect(outcomes.every((o) => o === 'ok' || o === 'STORE_TIMEOUT')).toBe(true);
    } finally {
      holder.release();
    }
    const held = await db.pool.query(`SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND classid = $1 AND objid = $2 AND granted`, [LOCK_CLASS.position, key]);
    expect(held.rows).toEqual([]);
    // Other appenders are not blocked.
    await direct.append('after', [{ type: 'A', data: 1 }, { type: 'B', data: 2 }], { expectedVersion: 'no-stream' });
  }, 20_000);

  it('a failed expected-version check keeps its pooled connection (a new one costs many appends)', async () => {
    const direct = await PostgresEventStore.create({ pool: db.pool, schema: db.schema('keepconn') });
    closers.push(() => direct.close());
    const store = new PostgresEventStore({ connectionString: DATABASE_URL, schema: direct.schema, notify: 'off', logger: { debug() {}, info() {}, warn() {}, error() {} } });
    closers.push(() => store.close());
    await store.append('s', [{ type: 'A', data: 0 }], { expectedVersion: 'no-stream' });
    let connects = 0;
    store.pool.on('connect', () => connects++);
    for (let i = 0; i < 20; i++) {
      const conflict = await failure(() => store.append('s', [{ type: 'A', data: i }], { expectedVersion: 5 }));
      expect(conflict.code).toBe('CONCURRENCY_CONFLICT');
      await store.appendMany([{ streamId: 's', events: [{ type: 'A', data: i }], expectedVersion: 'no-stream' }]).catch(() => undefined);
    }
    expect(connects).toBe(0);
    await store.append('s', [{ type: 'A', data: 1 }], { expectedVersion: 1 });
    expect(await store.streamVersion('s')).toBe(2);
  });

  it('a group whose hook statement outlives query_timeout fails as a whole with STORE_TIMEOUT, as a single append does, and its connection is dropped', async () => {
    const direct = await PostgresEventStore.create({ pool: db.pool, schema: db.schema('hooktimeout') });
    closers.push(() => direct.close());
    const store = new PostgresEventStore({
      connectionString: DATABASE_URL,
      schema: direct.schema,
      notify: 'off',
      // One connection: whatever this group leaves on it, the next statements meet.
      poolConfig: { max: 1, query_timeout: 600 },
      logger: { debug() {}, info() {}, warn() {}, error() {} },
    });
    closers.push(() => store.close());
    store.addAppendHook(async (events, client) => {
      if (events.some((e) => e.streamId === 'slow')) await client.query('SELECT pg_sleep(0.9)');
      else await client.query('SELECT 1');
    });
    // The first appends take the commit slots alone; the next ones queue and go as one group.
    const ahead = Promise.all(Array.from({ length: GROUPS_IN_FLIGHT }, (_, i) => store.append(`ahead-${i}`, [{ type: 'A', data: 0 }], { expectedVersion: 'no-stream' })));
    const grouped = ['g-1', 'slow', 'g-2'].map((stream) =>
      store.append(stream, [{ type: 'A', data: stream }], { expectedVersion: 'no-stream' }).then(() => 'ok', (e: { code?: string }) => e.code ?? 'error'),
    );
    await ahead;
    const outcomes = await Promise.all(grouped);
    expect(store.groupCommitStats!.largestGroup).toBe(3);
    expect(outcomes).toEqual(['STORE_TIMEOUT', 'STORE_TIMEOUT', 'STORE_TIMEOUT']);
    // The server rolls the group back once it sees the connection gone.
    await new Promise((resolve) => setTimeout(resolve, 1_200));
    for (const stream of ['g-1', 'slow', 'g-2']) expect(await direct.streamVersion(stream)).toBe(0);
    // The pool's next connection answers each statement with its own reply.
    expect(await store.streamVersion('ahead-0')).toBe(1);
    expect((await store.readStream('ahead-1').toArray()).map((e) => e.data)).toEqual([0]);
    await store.append('g-1', [{ type: 'A', data: 'again' }], { expectedVersion: 'no-stream' });
    expect(await store.streamVersion('g-1')).toBe(1);
  }, 20_000);

  it('migrate() waits for another migration longer than query_timeout', async () => {
    const schema = db.schema('migwait');
    const store = new PostgresEventStore({ connectionString: DATABASE_URL, schema, poolConfig: { query_timeout: 300, max: 2 } });
    closers.push(() => store.close());
    const holder = await db.pool.connect();
    try {
      await holder.query('BEGIN');
      await holder.query('SELECT pg_advisory_xact_lock($1, $2)', [LOCK_CLASS.migrate, schemaLockKey(schema)]);
      const started = Date.now();
      const migrating = store.migrate();
      await new Promise((resolve) => setTimeout(resolve, 1_000));
      await holder.query('COMMIT');
      await migrating;
      expect(Date.now() - started).toBeGreaterThanOrEqual(900);
    } finally {
      holder.release();
    }
    await store.append('s', [{ type: 'A', data: 1 }], { expectedVersion: 'no-stream' });
    expect(await store.streamVersion('s')).toBe(1);
  });
});
