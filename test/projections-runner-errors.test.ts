// A runner's last fault is stored where its checkpoint lives, while the fault lasts, and cleared
// once the runner gets past it: in memory, in SQLite (the example's NATS → SQLite read model, NATS
// cut by a TCP proxy), in PostgreSQL (the log read through a cut proxy), and — for `eventfold
// projections status` — seen by a spawned CLI. NATS KV is covered in cli-nats.test.ts.
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import {
  defineProjection,
  InMemoryEventStore,
  InMemoryProjectionRunner,
  InMemoryReadModel,
  ProjectionRunner,
  type AnyEvent,
  type StoredRunnerError,
} from '../src/index.js';
import { NatsCheckpointStore, NatsEventStore, natsWakeUps } from '../src/nats/index.js';
import { PostgresCatalog, PostgresEventStore, PostgresProjectionLock, PostgresProjectionTarget } from '../src/postgres/index.js';
import { RunnerErrorRecorder, runnerErrorRecord } from '../src/projections/runner-error.js';
import { SqliteCatalog, SqliteCheckpointStore, SqliteEventStore, SqliteProjectionLock, SqliteProjectionTarget } from '../src/sqlite/index.js';
import { PROJECTION_MIGRATIONS, PROJECTIONS_COMPONENT } from '../src/sqlite/projection-schema.js';
import { migrateSchema } from '../src/sqlite/schema.js';
import { foldAccounts } from './fixtures/projection-model.js';
import { postgresAccountsProjection, readPostgresAccounts } from './fixtures/projection-postgres-accounts.js';
import { readSqliteAccounts, sqliteAccountsProjection } from './fixtures/projection-sqlite-accounts.js';
import { sqliteTempDir } from './fixtures/sqlite-temp.js';
import { runCli } from './support/cli-process.js';
import { expectTerminalSafe } from './support/cli-suite.js';
import { NATS_URL, natsStores } from './support/nats.js';
import { DATABASE_URL, pgTestDatabase } from './support/postgres.js';
import { hostAndPort, startTcpProxy, viaPort, type TcpProxy } from './support/tcp-proxy.js';

const db = pgTestDatabase({ max: 6 });
const nats = natsStores('runerr');
const temp = sqliteTempDir('eventfold-runerr-');
const closers: (() => Promise<unknown>)[] = [];
afterAll(async () => {
  for (const close of closers.reverse()) await close().catch(() => undefined);
  await nats.cleanup();
  await db.cleanup();
  temp.cleanup();
});

const fastRetry = { maxAttempts: Number.POSITIVE_INFINITY, initialDelayMs: 20, maxDelayMs: 200 };
const quiet = { onError: () => undefined };

async function seedAccounts(store: { append: NatsEventStore['append'] }, count: number, from = 0): Promise<void> {
  for (let j = from; j < from + count; j++) {
    const type = j % 5 === 4 ? 'Withdrawn' : 'Deposited';
    await store.append(`account-${j % 3}`, [{ type, data: { amount: j + 1, text: 'x' } }], { expectedVersion: 'any' });
  }
}

function jsonLines(stdout: string): Record<string, unknown>[] {
  return stdout
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

async function proxyTo(target: { host: string; port: number }): Promise<TcpProxy> {
  const proxy = await startTcpProxy(target);
  closers.push(() => proxy.close());
  return proxy;
}

describe('runner errors stored beside the checkpoint', () => {
  it('in memory: a retried handler failure is stored as retrying, cleared once it passes; a final one stays as failed', async () => {
    const store = new InMemoryEventStore();
    await store.append('a-1', [{ type: 'Tick', data: {} }, { type: 'Tick', data: {} }], { expectedVersion: 'no-stream' });
    let failures = 0;
    let healed = false;
    const seen: StoredRunnerError[] = [];
    const readModel = new InMemoryReadModel();
    const projection = defineProjection<AnyEvent, unknown>({
      name: 'ticks',
      handlers: {
        Tick: () => {
          if (!healed) {
            failures++;
            throw Object.assign(new Error(`downstream refused (${failures})`), { code: 'EDOWN' });
          }
        },
      },
    });
    const runner = new InMemoryProjectionRunner(store, projection, { readModel, retry: fastRetry, pollIntervalMs: 20, ...quiet });
    await runner.start();
    await expect.poll(async () => {
      const stored = await runner.storedError();
      if (stored !== undefined) seen.push(stored);
      return stored?.attempts ?? 0;
    }, { timeout: 10_000 }).toBeGreaterThanOrEqual(3);
    expect(seen.at(-1)).toMatchObject({ state: 'retrying', code: 'EDOWN', message: expect.stringMatching(/^Projection 'ticks' failed on event Tick .*: downstream refused \(\d+\)$/) });
    healed = true;
    await runner.waitUntilCaughtUp({ timeoutMs: 10_000 });
    await expect.poll(() => runner.storedError(), { timeout: 10_000 }).toBeUndefined();
    await runner.stop();

    // Poison with 'stop': the runner fails and its fault stays stored for whoever looks later.
    healed = false;
    await store.append('a-1', [{ type: 'Tick', data: {} }], { expectedVersion: 'any' });
    const stopping = new InMemoryProjectionRunner(store, projection, { readModel, retry: { maxAttempts: 2, initialDelayMs: 5 }, ...quiet });
    await stopping.start();
    const final = await stopping.whenStopped();
    expect(final.state).toBe('failed');
    expect(await stopping.storedError()).toMatchObject({ state: 'failed', attempts: 2, code: expect.any(String) });

    // A standby that never got the lock records nothing over the holder's state.
    const holder = new InMemoryProjectionRunner(store, defineProjection<AnyEvent, unknown>({ name: 'other', handlers: {} }), { readModel, ...quiet });
    await holder.start();
    const standby = new InMemoryProjectionRunner(store, defineProjection<AnyEvent, unknown>({ name: 'other', handlers: {} }), { readModel, whenLocked: 'fail', ...quiet });
    await expect(standby.start()).rejects.toMatchObject({ code: 'PROJECTION_LOCKED' });
    expect(await standby.storedError()).toBeUndefined();
    await holder.stop();
  });

  it('keeps long messages short and takes the innermost code of the cause chain', () => {
    const inner = Object.assign(new Error('terminating connection due to administrator command'), { code: '57P01' });
    const outer = Object.assign(new Error('x'.repeat(5_000), { cause: inner }), { code: 'STORE_UNAVAILABLE' });
    const record = runnerErrorRecord(outer, { attempt: 3, willRetry: true, delayMs: 10, transient: true });
    expect(record).toMatchObject({ code: '57P01', attempts: 3, state: 'retrying' });
    expect(record.message).toHaveLength(2_000);
  });

  it('the recorder writes one at a time, never an older fault after a newer one, and ends with the last state', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.boolean(), { maxLength: 25 }), // true: a fault (attempt = its index + 1), false: recovered
        fc.array(fc.boolean(), { maxLength: 40 }),
        fc.array(fc.integer({ min: 0, max: 3 }), { maxLength: 40 }),
        fc.boolean(),
        async (ops, failures, delays, failing) => {
          let stored: StoredRunnerError | undefined;
          let writes = 0;
          let inFlight = 0;
          let lastFault = 0;
          const sink = {
            async recordError(_: string, error: StoredRunnerError | undefined): Promise<void> {
              const i = writes++;
              inFlight++;
              expect(inFlight).toBe(1);
              await new Promise((resolve) => setTimeout(resolve, delays[i % Math.max(1, delays.length)] ?? 0));
              inFlight--;
              if (failing && failures[i] === true) throw new Error('store down');
              if (error !== undefined) {
                expect(error.attempts).toBeGreaterThan(lastFault);
                lastFault = error.attempts;
              }
              stored = error;
            },
          };
          const recorder = new RunnerErrorRecorder('p', sink);
          for (const [index, isFault] of ops.entries()) {
            if (isFault) recorder.fault(new Error(`fault ${index}`), { attempt: index + 1, willRetry: true, delayMs: 1, transient: true });
            else recorder.recovered();
            if (index % 3 === 0) await new Promise((resolve) => setTimeout(resolve, 1));
          }
          await recorder.flush(5_000);
          if (!failing) expect(stored?.attempts).toBe(ops.at(-1) === true ? ops.length : undefined);
        },
      ),
      { numRuns: 60 },
    );
  });

  it('NATS KV: errors under their own key, any projection name, never listed as checkpoints nor moving the checkpoint revision', async () => {
    const store = await nats.create();
    closers.push(() => store.close());
    const checkpoints = new NatsCheckpointStore({ connection: store.connection, bucket: nats.bucket('errkv'), storage: 'memory' });
    closers.push(() => checkpoints.close());
    const names = ['plain', 'a.b*c>', 'error', 'ümlaut projection'];
    for (const [i, name] of names.entries()) {
      await checkpoints.save(name, undefined, { position: i + 1, version: 1 });
      await checkpoints.saveError(name, { message: `m${i}`, code: i === 0 ? undefined : 'C', at: new Date(1_000 + i), attempts: i + 1, state: 'retrying' });
      // The checkpoint's compare-and-set still sees the revision it read.
      await checkpoints.save(name, { position: i + 1, version: 1 }, { position: i + 10, version: 1 });
    }
    expect((await checkpoints.list()).map((c) => [c.projection, c.position])).toEqual(
      [...names].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b))).map((name) => [name, names.indexOf(name) + 10]),
    );
    const errors = await checkpoints.listErrors();
    expect([...errors.keys()].sort()).toEqual([...names].sort());
    expect(errors.get('a.b*c>')).toEqual({ message: 'm1', code: 'C', at: new Date(1_001), attempts: 2, state: 'retrying' });
    await checkpoints.saveError('a.b*c>', undefined);
    expect(await checkpoints.loadError('a.b*c>')).toBeUndefined();
    await checkpoints.delete('plain');
    expect(await checkpoints.loadError('plain')).toBeUndefined();
    expect((await checkpoints.listErrors()).size).toBe(2);
  });

  it('the CLI escapes a stored error message: no control sequence reaches the terminal, JSON reads back exactly', async () => {
    const path = temp.file('hostile.sqlite');
    const store = new SqliteEventStore({ path });
    closers.push(() => store.close());
    const hostile = 'pwn\u001b[2J\u001b]52;c;ZXZpbA==\u0007\u009b31m\u202egnp.exe\nsecond line';
    await new SqliteCheckpointStore(store.database).saveError('evil', { message: hostile, code: '\u001b[31mX', at: new Date(), attempts: 2, state: 'failed' });
    for (const env of [{}, { FORCE_COLOR: '1' }]) {
      const human = await runCli(['projections', 'status', '--db', path], { env });
      expect(human.code, human.stderr).toBe(0);
      expectTerminalSafe(human.stdout);
      expect(human.stdout).toContain('pwn\\u001b[2J');
      expect(human.stdout.replace(/\u001b\[\d+m/g, '')).toMatch(/evil\s+failed\s+0\s+0\s+-\s+0\s+-\s+\[\\u001b\[31mX\] pwn/);
    }
    const json = await runCli(['projections', 'status', '--json', '--db', path]);
    expectTerminalSafe(json.stdout);
    expect(jsonLines(json.stdout)[0]).toMatchObject({ projection: 'evil', state: 'failed', lastError: hostile, errorCode: '\u001b[31mX', errorAttempts: 2 });
  });

  it('in SQLite, with the events on NATS cut by a proxy (the example app): retrying while cut, cleared after, shown by the CLI', async () => {
    const direct = await nats.create();
    await seedAccounts(direct, 30);
    const proxy = await proxyTo({ host: '127.0.0.1', port: Number(new URL(NATS_URL).port || 4222) });
    const viaProxy = await NatsEventStore.connect({
      servers: `nats://127.0.0.1:${proxy.port}`,
      stream: direct.options.stream,
      subjectPrefix: direct.options.subjectPrefix,
      retryWindowMs: 500,
      connectionOptions: { maxReconnectAttempts: -1, reconnectTimeWait: 100, timeout: 2_000 },
    });
    closers.push(() => viaProxy.close());
    const path = temp.file('read.sqlite');
    const read = new SqliteEventStore({ path });
    closers.push(() => read.close());
    const runner = new ProjectionRunner({
      store: viaProxy,
      projection: sqliteAccountsProjection(),
      target: new SqliteProjectionTarget(read),
      lock: new SqliteProjectionLock(read.database, 60_000),
      wakeUps: natsWakeUps(viaProxy),
      pollIntervalMs: 50,
      retry: fastRetry,
      ...quiet,
    });
    closers.push(() => runner.stop());
    await runner.start();
    await runner.waitUntilCaughtUp({ timeoutMs: 30_000 });
    const catalog = new SqliteCatalog(read);
    expect(await catalog.listErrors()).toEqual(new Map());

    proxy.cut();
    await seedAccounts(direct, 10, 30);
    await expect.poll(async () => (await catalog.listErrors()).get('accounts')?.state, { timeout: 30_000 }).toBe('retrying');
    const stored = (await catalog.listErrors()).get('accounts')!;
    expect(stored.message).not.toBe('');
    expect(Date.now() - stored.at.getTime()).toBeLessThan(60_000);
    const status = await runCli(['projections', 'status', '--json', '--db', `${NATS_URL}?stream=${direct.options.stream}&subjectPrefix=${direct.options.subjectPrefix}`, '--checkpoints', path]);
    expect(status.code, status.stderr).toBe(0);
    expect(jsonLines(status.stdout)).toEqual([
      expect.objectContaining({ projection: 'accounts', state: 'retrying', lastErrorSource: 'runner', lastError: stored.message, errorAttempts: expect.any(Number) }),
    ]);
    expect(jsonLines(status.stdout)[0]!['lag']).toBeGreaterThan(0);

    proxy.restore();
    await runner.waitUntilCaughtUp({ timeoutMs: 60_000 });
    await expect.poll(async () => (await catalog.listErrors()).size, { timeout: 30_000 }).toBe(0);
    await runner.stop();
    const model = readSqliteAccounts(read.database);
    expect(model.applied.map((a) => a.position)).toEqual(foldAccounts(await direct.readAll().toArray()).applied);
    await direct.close();
  });

  it('in PostgreSQL, with the log read through a cut proxy: retrying with an error code while cut, cleared after, shown by the CLI', async () => {
    const schema = db.schema('runerr');
    const direct = await PostgresEventStore.create({ pool: db.pool, schema });
    await seedAccounts(direct, 40);
    const proxy = await proxyTo(hostAndPort(DATABASE_URL));
    const viaProxy = new PostgresEventStore({
      connectionString: viaPort(DATABASE_URL, proxy.port),
      schema,
      notify: 'off',
      poolConfig: { max: 2, connectionTimeoutMillis: 1_000, application_name: 'runerr-proxy' },
    });
    closers.push(() => viaProxy.close());
    const runner = new ProjectionRunner({
      store: viaProxy,
      projection: postgresAccountsProjection({ schema }),
      target: new PostgresProjectionTarget(direct),
      lock: new PostgresProjectionLock(db.pool, schema),
      pollIntervalMs: 50,
      batchSize: 8,
      retry: fastRetry,
      ...quiet,
    });
    closers.push(() => runner.stop());
    await runner.start();
    await runner.waitUntilCaughtUp({ timeoutMs: 30_000 });
    const catalog = new PostgresCatalog(direct);
    expect((await catalog.listErrors()).size).toBe(0);

    proxy.cut();
    await seedAccounts(direct, 10, 40);
    await expect.poll(async () => (await catalog.listErrors()).get('accounts')?.attempts ?? 0, { timeout: 30_000 }).toBeGreaterThanOrEqual(2);
    const stored = (await catalog.listErrors()).get('accounts')!;
    expect(stored).toMatchObject({ state: 'retrying', code: expect.stringMatching(/^(ECONNREFUSED|ECONNRESET|57P01|08\w{3}|STORE_UNAVAILABLE)$/) });
    const status = await runCli(['projections', 'status', '--json', '--db', DATABASE_URL, '--schema', schema]);
    expect(status.code, status.stderr).toBe(0);
    expect(jsonLines(status.stdout)[0]).toMatchObject({ projection: 'accounts', state: 'retrying', errorCode: stored.code, lastErrorSource: 'runner' });
    const human = await runCli(['projections', 'status', '--db', DATABASE_URL, '--schema', schema]);
    expect(human.stdout).toMatch(new RegExp(`accounts\\s+retrying\\s+.*\\[${stored.code}\\] .*\\(attempt \\d+, `));

    proxy.restore();
    await runner.waitUntilCaughtUp({ timeoutMs: 60_000 });
    await expect.poll(async () => (await catalog.listErrors()).size, { timeout: 30_000 }).toBe(0);
    await runner.stop();
    const actual = await readPostgresAccounts(db.pool, schema);
    expect(actual.applied.map((row) => row.position)).toEqual(foldAccounts(await direct.readAll().toArray()).applied);
  });

  it('old databases keep working: a SQLite file at projections schema 2 and a PostgreSQL schema without the errors table', async () => {
    // SQLite: create the projection tables as the previous release did (migrations 1-2), with a checkpoint.
    const path = temp.file('old.sqlite');
    const old = new SqliteEventStore({ path });
    closers.push(() => old.close());
    migrateSchema(old.database, PROJECTIONS_COMPONENT, PROJECTION_MIGRATIONS.slice(0, 2));
    old.database.prepare('INSERT INTO eventfold_projection_checkpoints VALUES (?, ?, ?, ?)').run('legacy', 0, 1, Date.now());
    const before = await runCli(['projections', 'status', '--json', '--db', path]);
    expect(before.code, before.stderr).toBe(0);
    expect(jsonLines(before.stdout)).toEqual([expect.objectContaining({ projection: 'legacy', lastError: null, state: 'stopped' })]);
    const checkpoints = new SqliteCheckpointStore(old.database); // migrates to 3
    expect(old.database.prepare(`SELECT version FROM eventfold_schema WHERE component = 'projections'`).pluck().get()).toBe(PROJECTION_MIGRATIONS.length);
    expect(await checkpoints.load('legacy')).toEqual({ position: 0, version: 1 });
    await checkpoints.saveError('legacy', { message: 'm', code: undefined, at: new Date(1_000), attempts: 1, state: 'failed' });
    expect(await checkpoints.loadError('legacy')).toEqual({ message: 'm', code: undefined, at: new Date(1_000), attempts: 1, state: 'failed' });

    // PostgreSQL: the checkpoint table only, as before; status reads it, a runner's migrate adds the table.
    const schema = db.schema('runerrold');
    const store = await PostgresEventStore.create({ pool: db.pool, schema });
    await db.pool.query(`CREATE TABLE ${schema}.projection_checkpoints (name text PRIMARY KEY, position bigint NOT NULL, version integer NOT NULL, updated_at timestamptz NOT NULL DEFAULT now())`);
    await db.pool.query(`INSERT INTO ${schema}.projection_checkpoints (name, position, version) VALUES ('legacy', 0, 1)`);
    const pgBefore = await runCli(['projections', 'status', '--json', '--db', DATABASE_URL, '--schema', schema]);
    expect(pgBefore.code, pgBefore.stderr).toBe(0);
    expect(jsonLines(pgBefore.stdout)).toEqual([expect.objectContaining({ projection: 'legacy', lastError: null })]);
    const target = new PostgresProjectionTarget(store);
    await target.prepare();
    await target.recordError('legacy', { message: 'm', code: '57P01', at: new Date(2_000), attempts: 4, state: 'retrying' });
    expect(await new PostgresCatalog(store).listErrors()).toEqual(new Map([['legacy', { message: 'm', code: '57P01', at: new Date(2_000), attempts: 4, state: 'retrying' }]]));
    await target.recordError('legacy', undefined);
    expect(await target.readError('legacy')).toBeUndefined();
  });
});
