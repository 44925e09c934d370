// Fault tests of the PostgreSQL projection runner against the real server: backends killed during
// catch-up, connections cut (a TCP proxy between runner and server) during catch-up, live tailing
// and a lock wait, connections dropped just before start, and a handed-in pool without a listener.
// Each ends with the read model equal to the fold of the whole log.
import { spawn } from 'node:child_process';
import { afterAll, describe, expect, it } from 'vitest';
import { PostgresEventStore } from '../src/postgres/postgres-event-store.js';
import { PostgresProjectionRunner, type PostgresProjectionRunnerOptions } from '../src/postgres/projections.js';
import type { AccountEvent } from './fixtures/projection-model.js';
import { postgresAccountsProjection, readPostgresAccounts, type PostgresAccountsOptions } from './fixtures/projection-postgres-accounts.js';
import { DATABASE_URL, pgTestDatabase } from './support/postgres.js';
import { errorRecorder, expectFoldedAccounts, seedAccounts, type ErrorRecorder } from './support/projection-accounts.js';
import { startPrivatePostgres } from './support/private-postgres.js';
import { hostAndPort, startTcpProxy, viaPort, type TcpProxy } from './support/tcp-proxy.js';

const db = pgTestDatabase({ max: 10 });
const closers: (() => Promise<unknown>)[] = [];
afterAll(async () => {
  for (const close of closers.reverse()) await close().catch(() => undefined);
  await db.cleanup();
});

/** The store tests seed and read through: the shared test pool, straight to the server. */
async function directStore(tag: string): Promise<PostgresEventStore> {
  const store = await PostgresEventStore.create({ pool: db.pool, schema: db.schema(tag), pageSize: 50 });
  closers.push(() => store.close());
  return store;
}

/** A store of its own pool (and application name), on `url`, over the schema of `direct`. */
function ownStore(direct: PostgresEventStore, url: string, applicationName: string): PostgresEventStore {
  const store = new PostgresEventStore({
    connectionString: url,
    schema: direct.schema,
    pageSize: 50,
    poolConfig: { max: 4, application_name: applicationName, connectionTimeoutMillis: 2_000 },
  });
  closers.push(() => store.close());
  return store;
}

async function proxy(): Promise<TcpProxy> {
  const p = await startTcpProxy(hostAndPort(DATABASE_URL));
  closers.push(() => p.close());
  return p;
}

function expectFolded(store: PostgresEventStore): Promise<void> {
  return expectFoldedAccounts(store, () => readPostgresAccounts(db.pool, store.schema));
}

const fastRetry = { maxAttempts: 50, initialDelayMs: 10, maxDelayMs: 200 };

/** A runner of the accounts projection with the fast retry policy (reporting to `rec`), started; afterAll stops it. */
async function startRunner(
  store: PostgresEventStore,
  projection: PostgresAccountsOptions,
  options: PostgresProjectionRunnerOptions,
  rec?: ErrorRecorder,
): Promise<PostgresProjectionRunner<AccountEvent>> {
  const runner = new PostgresProjectionRunner(store, postgresAccountsProjection(projection), {
    retry: fastRetry,
    ...(rec === undefined ? {} : { onError: rec.onError }),
    ...options,
  });
  closers.push(() => runner.stop());
  await runner.start();
  return runner;
}

async function killBackends(applicationName: string): Promise<number> {
  const result = await db.pool.query(
    `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1 AND pid <> pg_backend_pid()`,
    [applicationName],
  );
  return result.rowCount ?? 0;
}

describe('PostgresProjectionRunner under faults', () => {
  it("survives its pool's backends killed several times within 30 ms during catch-up", async () => {
    const direct = await directStore('kill');
    await seedAccounts(direct, 600);
    const app = `eft-kill-${process.pid}`;
    const store = ownStore(direct, DATABASE_URL, app);
    const rec = errorRecorder();
    const runner = await startRunner(store, { schema: direct.schema, delayMs: 1 }, {
      batchSize: 20,
      pollIntervalMs: 50,
    }, rec);
    await expect.poll(() => runner.checkpoint?.position ?? 0, { timeout: 30_000 }).toBeGreaterThan(40);
    let killed = 0;
    for (let i = 0; i < 4; i++) {
      killed += await killBackends(app);
      await new Promise((resolve) => setTimeout(resolve, 8));
    }
    expect(killed).toBeGreaterThan(0);
    await runner.waitUntilCaughtUp({ timeoutMs: 60_000 });
    expect(runner.state).not.toBe('failed');
    expect(rec.errors.length).toBeGreaterThan(0);
    expect(rec.errors.every((e) => e.info.transient && e.info.willRetry)).toBe(true);
    await runner.stop();
    await expectFolded(direct);
  });

  it('survives every connection cut (proxy) during catch-up, and resumes once the server is reachable', async () => {
    const direct = await directStore('cutcatch');
    await seedAccounts(direct, 600);
    const p = await proxy();
    const store = ownStore(direct, viaPort(DATABASE_URL, p.port), 'eft-cut-catchup');
    const rec = errorRecorder();
    const runner = await startRunner(store, { schema: direct.schema, delayMs: 1 }, {
      batchSize: 25,
      pollIntervalMs: 50,
    }, rec);
    await expect.poll(() => runner.checkpoint?.position ?? 0, { timeout: 30_000 }).toBeGreaterThan(50);
    p.cut();
    await expect.poll(() => rec.errors.length, { timeout: 20_000 }).toBeGreaterThan(2);
    expect(runner.state).not.toBe('failed');
    p.restore();
    await runner.waitUntilCaughtUp({ timeoutMs: 60_000 });
    expect(rec.errors.every((e) => e.info.transient)).toBe(true);
    expect(runner.status.lastError).toBeDefined();
    await runner.stop();
    await expectFolded(direct);
  });

  it('survives a cut while live: retries, takes its lock again, reopens LISTEN, misses nothing appended meanwhile', async () => {
    const direct = await directStore('cutlive');
    await seedAccounts(direct, 50);
    const p = await proxy();
    const store = ownStore(direct, viaPort(DATABASE_URL, p.port), 'eft-cut-live');
    const rec = errorRecorder();
    const states: string[] = [];
    const runner = await startRunner(store, { schema: direct.schema }, {
      // Only NOTIFY (or the restart after the fault) can wake it in time: proves LISTEN is back.
      pollIntervalMs: 60_000,
      onStatus: (s) => states.push(s.state),
    }, rec);
    await runner.waitUntilCaughtUp({ timeoutMs: 30_000 });
    p.cut();
    await seedAccounts(direct, 30); // appended while the runner cannot reach the server
    await expect.poll(() => rec.errors.length, { timeout: 20_000 }).toBeGreaterThan(1);
    p.restore();
    await runner.waitUntilCaughtUp({ timeoutMs: 60_000 });
    await expect.poll(() => runner.state, { timeout: 30_000 }).toBe('live');
    await new Promise((resolve) => setTimeout(resolve, 200));
    await seedAccounts(direct, 20);
    await runner.waitUntilCaughtUp({ timeoutMs: 20_000 });
    expect(states).toContain('retrying');
    await runner.stop();
    await expectFolded(direct);
  });

  it('a standby runner survives a cut during its lock wait, then takes over', async () => {
    const direct = await directStore('cutlock');
    await seedAccounts(direct, 40);
    const holder = await startRunner(direct, { schema: direct.schema, runnerId: 'a' }, {
      pollIntervalMs: 50,
    });
    await holder.waitUntilCaughtUp({ timeoutMs: 30_000 });
    const p = await proxy();
    const store = ownStore(direct, viaPort(DATABASE_URL, p.port), 'eft-cut-lock');
    const rec = errorRecorder();
    const standby = await startRunner(store, { schema: direct.schema, runnerId: 'b' }, {
      pollIntervalMs: 50,
      lockRetryMs: 20,
    }, rec);
    expect(standby.state).toBe('waiting-for-lock');
    p.cut();
    await expect.poll(() => rec.errors.length, { timeout: 20_000 }).toBeGreaterThan(2);
    expect(standby.state).not.toBe('failed');
    p.restore();
    await holder.stop();
    await seedAccounts(direct, 30);
    await expect.poll(() => standby.state, { timeout: 30_000 }).toBe('live');
    await standby.waitUntilCaughtUp({ timeoutMs: 30_000 });
    await standby.stop();
    await expectFolded(direct);
    const runners = await db.pool.query(`SELECT DISTINCT runner FROM "${direct.schema}".applied ORDER BY runner`);
    expect(runners.rows.map((r) => r.runner)).toEqual(['a', 'b']);
  });

  it('reopens its LISTEN connection when that connection alone is killed (woken by NOTIFY again, not by polling)', async () => {
    const direct = await directStore('listen');
    await seedAccounts(direct, 20);
    const rec = errorRecorder();
    const runner = await startRunner(direct, { schema: direct.schema }, {
      pollIntervalMs: 120_000,
    }, rec);
    await runner.waitUntilCaughtUp({ timeoutMs: 30_000 });
    const listenQuery = `LISTEN "${direct.notifyChannel}"`;
    const killed = await db.pool.query(`SELECT pg_terminate_backend(pid) AS killed FROM pg_stat_activity WHERE query = $1`, [listenQuery]);
    expect(killed.rows).toEqual([{ killed: true }]);
    await expect.poll(() => rec.errors.length, { timeout: 20_000 }).toBeGreaterThan(0);
    expect(rec.errors[0]!.info.transient).toBe(true);
    // A new LISTEN connection is up again.
    await expect
      .poll(async () => (await db.pool.query(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE query = $1`, [listenQuery])).rows[0].n, {
        timeout: 20_000,
      })
      .toBe(1);
    await seedAccounts(direct, 10);
    await runner.waitUntilCaughtUp({ timeoutMs: 20_000 });
    expect(runner.state).toBe('live');
    await runner.stop();
    await expectFolded(direct);
  });

  it('survives a real server restart (its own private PostgreSQL, down for about 2 s) during catch-up, then tails again', async () => {
    const server = await startPrivatePostgres();
    try {
      const store = await PostgresEventStore.create({
        connectionString: server.url,
        schema: 'restart',
        pageSize: 50,
        poolConfig: { max: 4, connectionTimeoutMillis: 2_000 },
      });
      closers.push(() => store.close());
      await seedAccounts(store, 400);
      const rec = errorRecorder();
      const runner = await startRunner(store, { schema: 'restart', delayMs: 1 }, {
        batchSize: 20,
        pollIntervalMs: 50,
      }, rec);
      await expect.poll(() => runner.checkpoint?.position ?? 0, { timeout: 30_000 }).toBeGreaterThan(40);
      await server.stop();
      await expect.poll(() => rec.errors.length, { timeout: 20_000 }).toBeGreaterThan(1);
      await new Promise((resolve) => setTimeout(resolve, 1_500));
      expect(runner.state).not.toBe('failed');
      await server.start();
      await runner.waitUntilCaughtUp({ timeoutMs: 60_000 });
      await seedAccounts(store, 20);
      await runner.waitUntilCaughtUp({ timeoutMs: 30_000 });
      expect(rec.errors.every((e) => e.info.transient)).toBe(true);
      await runner.stop();
      await expectFoldedAccounts(store, () => readPostgresAccounts(store.pool, 'restart'));
      await store.close();
    } finally {
      await server.destroy();
    }
  });

  it('a fault retrying cannot fix (the checkpoint table dropped) ends the runner with a typed error, not endless retries', async () => {
    const direct = await directStore('schema');
    await seedAccounts(direct, 10);
    const rec = errorRecorder();
    const runner = await startRunner(direct, { schema: direct.schema }, {
      pollIntervalMs: 20,
    }, rec);
    await runner.waitUntilCaughtUp({ timeoutMs: 30_000 });
    await db.pool.query(`DROP TABLE "${direct.schema}".projection_checkpoints`);
    await seedAccounts(direct, 5);
    const status = await runner.whenStopped();
    expect(status.state).toBe('failed');
    expect(status.error).toMatchObject({ code: 'SCHEMA_NOT_MIGRATED', transient: false });
    expect(status.error?.message).toMatch(/migrate\(\)/);
    // Reported once, as the end, not retried.
    expect(rec.errors.map((e) => [e.info.transient, e.info.willRetry])).toEqual([[false, false]]);
    expect(rec.errors[0]!.message).toBe(status.error?.message);
  });

  for (const mode of ['runner', 'handed-pool'] as const) {
    it(
      mode === 'runner'
        ? 'a runner started right after the pool lost its idle connections starts and catches up (no crash)'
        : "a pool handed in without an 'error' listener does not crash the process when idle connections drop",
      async () => {
        const direct = await directStore(`drop${mode === 'runner' ? 'r' : 'p'}`);
        await seedAccounts(direct, 30);
        const child = spawn(
          process.execPath,
          ['--import', 'tsx', 'test/fixtures/pg-dropped-connections-child.ts', DATABASE_URL, direct.schema, mode],
          { stdio: ['ignore', 'pipe', 'pipe'] },
        );
        let out = '';
        let err = '';
        child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
        child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
        const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
        expect({ code, err: code === 0 ? '' : err }).toEqual({ code: 0, err: '' });
        const report = JSON.parse(out.trim().replace(/^ok /, '')) as { killed: number; position?: number; logged?: number };
        expect(report.killed).toBeGreaterThan(0);
        if (mode === 'runner') {
          expect(report.position).toBe(await direct.headPosition());
          await expectFolded(direct);
        } else {
          expect(report.logged).toBeGreaterThan(0);
        }
      },
    );
  }
});
