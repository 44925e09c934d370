// Fault tests of the SQLite projection runner: another process holds the file's write lock for
// longer than the runner's busyTimeout, while the runner stands by for its projection lock and
// while it catches up. Each ends with the read model equal to the fold of the whole log.
import { spawn, type ChildProcess } from 'node:child_process';
import { afterAll, describe, expect, it } from 'vitest';
import { SqliteProjectionRunner } from '../src/sqlite/projections.js';
import { SqliteEventStore } from '../src/sqlite/sqlite-event-store.js';
import { readSqliteAccounts, sqliteAccountsProjection } from './fixtures/projection-sqlite-accounts.js';
import { sqliteTempDir } from './fixtures/sqlite-temp.js';
import { errorRecorder, expectFoldedAccounts, seedAccounts } from './support/projection-accounts.js';

const temp = sqliteTempDir('eventfold-faults-');
const stores: SqliteEventStore[] = [];
const children: ChildProcess[] = [];
const runners: SqliteProjectionRunner<never>[] = [];
let files = 0;
afterAll(async () => {
  for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
  for (const runner of runners) await runner.stop().catch(() => undefined);
  for (const store of stores) await store.close();
  temp.cleanup();
});

function openStore(path: string, busyTimeout?: number): SqliteEventStore {
  const store = new SqliteEventStore({ path, synchronous: 'NORMAL', pageSize: 64, ...(busyTimeout === undefined ? {} : { busyTimeout }) });
  stores.push(store);
  return store;
}

function seed(store: SqliteEventStore, count: number, streams = 4): Promise<void> {
  return seedAccounts(store, count, { streams, perAppend: 10 });
}

function expectFolded(store: SqliteEventStore): Promise<void> {
  return expectFoldedAccounts(store, () => readSqliteAccounts(store.database));
}

/** Another process takes the write lock and holds it for `holdMs`; resolves once it holds it. */
async function holdWriteLock(path: string, holdMs: number): Promise<{ released: Promise<void> }> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'test/fixtures/sqlite-write-locker.ts', path, String(holdMs)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  children.push(child);
  let out = '';
  child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
  const released = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  await expect.poll(() => out.includes('locked'), { timeout: 20_000 }).toBe(true);
  return { released };
}

const fastRetry = { initialDelayMs: 10, maxDelayMs: 200 };

describe('SqliteProjectionRunner under faults', () => {
  it('a standby runner survives another process holding the write lock longer than busyTimeout, then takes over', async () => {
    const path = temp.file(`standby-${++files}.sqlite`);
    const storeA = openStore(path);
    await seed(storeA, 50);
    const a = new SqliteProjectionRunner(storeA, sqliteAccountsProjection({ runnerId: 'a' }), { pollIntervalMs: 50 });
    runners.push(a as never);
    await a.start();
    await a.waitUntilCaughtUp({ timeoutMs: 20_000 });

    const storeB = openStore(path, 300);
    const rec = errorRecorder();
    const b = new SqliteProjectionRunner(storeB, sqliteAccountsProjection({ runnerId: 'b' }), {
      pollIntervalMs: 50,
      lockRetryMs: 20,
      retry: fastRetry,
      onError: rec.onError,
    });
    runners.push(b as never);
    await b.start();
    expect(b.state).toBe('waiting-for-lock');
    const lock = await holdWriteLock(path, 2_500);
    await expect.poll(() => rec.errors.length, { timeout: 20_000 }).toBeGreaterThan(0);
    expect(rec.errors[0]!.message).toMatch(/SQLITE_BUSY/);
    expect(rec.errors[0]!.info).toMatchObject({ transient: true, willRetry: true });
    await lock.released;
    expect(b.state).not.toBe('failed');

    await a.stop();
    await seed(storeA, 30);
    await expect.poll(() => b.state, { timeout: 20_000 }).toBe('live');
    await b.waitUntilCaughtUp({ timeoutMs: 20_000 });
    await b.stop();
    await expectFolded(storeA);
    const byRunner = storeA.database.prepare('SELECT DISTINCT runner FROM applied ORDER BY runner').pluck().all();
    expect(byRunner).toEqual(['a', 'b']);
  });

  it('a runner starting and catching up while another process holds the write lock waits it out and applies everything once', async () => {
    const path = temp.file(`catchup-${++files}.sqlite`);
    const writer = openStore(path);
    await seed(writer, 300);
    const store = openStore(path, 300);
    const lock = await holdWriteLock(path, 2_000);
    const rec = errorRecorder();
    const runner = new SqliteProjectionRunner(store, sqliteAccountsProjection(), {
      batchSize: 25,
      pollIntervalMs: 50,
      retry: fastRetry,
      onError: rec.onError,
    });
    runners.push(runner as never);
    await runner.start();
    await expect.poll(() => rec.errors.length, { timeout: 20_000 }).toBeGreaterThan(0);
    expect(runner.state).not.toBe('failed');
    await lock.released;
    await runner.waitUntilCaughtUp({ timeoutMs: 30_000 });
    expect(rec.errors.every((e) => e.info.transient)).toBe(true);
    await runner.stop();
    await expectFolded(writer);
  });
});
