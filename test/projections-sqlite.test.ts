import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ProjectionLockedError } from '../src/projections/index.js';
import {
  addInlineSqliteProjection,
  SqliteCheckpointStore,
  SqliteProjectionRunner,
} from '../src/sqlite/projections.js';
import { SqliteEventStore } from '../src/sqlite/sqlite-event-store.js';
import { describeProjectionConformance } from '../src/testing/projection-conformance.js';
import { foldAccounts } from './fixtures/projection-model.js';
import { damageSqliteAccounts, readSqliteAccounts, sqliteAccountsProjection } from './fixtures/projection-sqlite-accounts.js';
import { expectFoldedAccounts, seedAccounts } from './support/projection-accounts.js';

const dir = mkdtempSync(join(tmpdir(), 'eventfold-projections-'));
let files = 0;
const stores: SqliteEventStore[] = [];
afterAll(async () => {
  for (const store of stores) await store.close();
  rmSync(dir, { recursive: true, force: true });
});

function openStore(path = join(dir, `db-${++files}.sqlite`)): SqliteEventStore {
  const store = new SqliteEventStore({ path, synchronous: 'NORMAL', pageSize: 64 });
  stores.push(store);
  return store;
}

function seed(store: SqliteEventStore, count: number, streams = 4): Promise<void> {
  return seedAccounts(store, count, { streams, perAppend: 10 });
}

function expectFolded(store: SqliteEventStore): Promise<void> {
  return expectFoldedAccounts(store, () => readSqliteAccounts(store.database));
}

// The store-independent behaviour (inline commit/rollback, catch-up and live tail woken by this
// process's appends, failures, unknown events, rebuilds, one runner at a time, checkpoint
// compare-and-set, the crash property) runs from the shared suite, on a fresh database file each.
describeProjectionConformance(
  'SQLite',
  () => {
    const store = new SqliteEventStore({ path: join(dir, `db-${++files}.sqlite`), synchronous: 'NORMAL', pageSize: 64 });
    return {
      store,
      checkpoints: new SqliteCheckpointStore(store.database),
      accounts: (options) => sqliteAccountsProjection(options),
      runner: (projection, settings) => new SqliteProjectionRunner(store, projection, settings),
      addInline: (projection) => addInlineSqliteProjection(store, projection),
      readModel: () => readSqliteAccounts(store.database),
      damage: () => damageSqliteAccounts(store.database),
      close: () => store.close(),
    };
  },
  { framework: { describe, it }, propertyRuns: 40 },
);

describe('SqliteProjectionRunner (SQLite specific)', () => {
  it('finds appends of another connection (process) by polling', async () => {
    const path = join(dir, `db-${++files}.sqlite`);
    const store = openStore(path);
    const other = openStore(path);
    const runner = new SqliteProjectionRunner(store, sqliteAccountsProjection(), { pollIntervalMs: 20 });
    await runner.start();
    await seed(other, 40);
    await expect.poll(() => runner.checkpoint?.position, { timeout: 5_000 }).toBe(40);
    await runner.stop();
    await expectFolded(store);
  });

  it('across connections: one runner runs a projection, the other waits and takes over; an expired lock row is taken over', async () => {
    const path = join(dir, `db-${++files}.sqlite`);
    const storeA = openStore(path);
    const storeB = openStore(path);
    await seed(storeA, 200);
    const a = new SqliteProjectionRunner(storeA, sqliteAccountsProjection({ runnerId: 'a' }), { lockRetryMs: 20 });
    const b = new SqliteProjectionRunner(storeB, sqliteAccountsProjection({ runnerId: 'b' }), { lockRetryMs: 20 });
    await a.start();
    await b.start();
    expect(b.state).toBe('waiting-for-lock');
    await a.waitUntilCaughtUp();
    await expect(new SqliteProjectionRunner(storeB, sqliteAccountsProjection(), { whenLocked: 'fail' }).start()).rejects.toThrow(
      ProjectionLockedError,
    );
    await a.stop();
    await seed(storeA, 20);
    await b.waitUntilCaughtUp({ timeoutMs: 5_000 });
    await b.stop();
    const runners = storeA.database.prepare('SELECT runner, count(*) AS n FROM applied GROUP BY runner ORDER BY runner').all();
    const expected = foldAccounts(await storeA.readAll().toArray());
    const byA = expected.applied.filter((p) => p <= 200).length;
    expect(runners).toEqual([
      { runner: 'a', n: byA },
      { runner: 'b', n: expected.applied.length - byA },
    ]);
    await expectFolded(storeA);

    // A lock row left by a crashed owner: honoured until it expires, then taken over.
    storeA.database
      .prepare('INSERT INTO eventfold_projection_locks (name, owner, expires_at) VALUES (?, ?, ?)')
      .run('accounts', 'crashed-owner', Date.now() + 300);
    const c = new SqliteProjectionRunner(storeA, sqliteAccountsProjection({ runnerId: 'c' }), { lockRetryMs: 20 });
    await c.start();
    expect(c.state).toBe('waiting-for-lock');
    await expect.poll(() => c.state, { timeout: 5_000 }).toBe('live');
    await c.stop();
  });

  it('survives SIGKILL of the runner process mid-catch-up: restart yields the exact fold', async () => {
    const path = join(dir, `db-${++files}.sqlite`);
    const store = openStore(path);
    await seed(store, 3000);
    for (const killAfterMs of [250, 600, 900]) {
      const child = spawn(process.execPath, ['--import', 'tsx', 'test/fixtures/projection-sqlite-child.ts', path, '25', '1', '400'], {
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      let out = '';
      child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
      await expect.poll(() => out.includes('"catching-up"') || out.includes('"live"'), { timeout: 20_000 }).toBe(true);
      await new Promise((r) => setTimeout(r, killAfterMs));
      child.kill('SIGKILL');
      await new Promise((r) => child.once('exit', r));
    }
    const checkpoint = new SqliteCheckpointStore(store.database).get('accounts');
    expect(checkpoint?.position ?? 0).toBeLessThan(3000); // the children really died mid-way
    const runner = new SqliteProjectionRunner(store, sqliteAccountsProjection(), { lockRetryMs: 50, lockTtlMs: 400 });
    await runner.start();
    await runner.waitUntilCaughtUp({ timeoutMs: 30_000 });
    await runner.stop();
    await expectFolded(store);
  });
});
