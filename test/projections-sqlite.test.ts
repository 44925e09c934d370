import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import {
  CheckpointConflictError,
  ProjectionHandlerError,
  ProjectionLockedError,
  type ProjectionProgress,
} from '../src/projections/index.js';
import {
  addInlineSqliteProjection,
  SqliteCheckpointStore,
  SqliteProjectionRunner,
} from '../src/sqlite/projections.js';
import { SqliteEventStore } from '../src/sqlite/sqlite-event-store.js';
import { foldAccounts, planEvents } from './fixtures/projection-model.js';
import { readSqliteAccounts, sqliteAccountsProjection } from './fixtures/projection-sqlite-accounts.js';

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

async function seed(store: SqliteEventStore, count: number, streams = 4): Promise<void> {
  for (let i = 0; i < count; i += 10) {
    const batch = Array.from({ length: Math.min(10, count - i) }, (_, j) => ({
      streamId: `account-${(i + j) % streams}`,
      events: [{ type: (i + j) % 5 === 4 ? 'Withdrawn' : (i + j) % 7 === 6 ? 'Noted' : 'Deposited', data: { amount: i + j + 1, text: 'x' } }],
      expectedVersion: 'any' as const,
    }));
    // Distinct streams per appendMany entry are required: group by stream.
    const byStream = new Map<string, { type: string; data: unknown }[]>();
    for (const b of batch) byStream.set(b.streamId, [...(byStream.get(b.streamId) ?? []), ...b.events]);
    await store.appendMany([...byStream].map(([streamId, events]) => ({ streamId, events, expectedVersion: 'any' as const })));
  }
}

async function expectFolded(store: SqliteEventStore): Promise<void> {
  const expected = foldAccounts(await store.readAll().toArray());
  const actual = readSqliteAccounts(store.database);
  expect(actual.accounts).toEqual(expected.accounts);
  expect(actual.applied).toEqual(expected.applied);
}

describe('inline projections (SQLite)', () => {
  it('commits with the append, and a failing handler rolls back events and read model together', async () => {
    const store = openStore();
    let armed = true;
    const remove = addInlineSqliteProjection(store, sqliteAccountsProjection({ failAt: { position: 3, armed: () => armed } }));
    await store.append('account-1', [{ type: 'Deposited', data: { amount: 10 } }], { expectedVersion: 'no-stream' });
    await store.append('account-2', [{ type: 'Deposited', data: { amount: 7 } }], { expectedVersion: 'no-stream' });
    await expectFolded(store);

    const failing = store.appendMany([
      { streamId: 'account-1', events: [{ type: 'Withdrawn', data: { amount: 5 } }], expectedVersion: 1 },
      { streamId: 'account-3', events: [{ type: 'Deposited', data: { amount: 1 } }], expectedVersion: 'no-stream' },
    ]);
    await expect(failing).rejects.toThrow(ProjectionHandlerError);
    await expect(failing).rejects.toThrow(/Withdrawn \(stream 'account-1', version 2, position 3\): boom at 3/);
    expect(await store.headPosition()).toBe(2);
    expect(await store.streamVersion('account-3')).toBe(0);
    await expectFolded(store);

    armed = false;
    await store.append('account-1', [{ type: 'Withdrawn', data: { amount: 5 } }], { expectedVersion: 1 });
    await expectFolded(store);
    expect(readSqliteAccounts(store.database).accounts.get('account-1')).toEqual({ balance: 5, events: 2, lastVersion: 2 });
    remove();
  });
});

describe('SqliteProjectionRunner', () => {
  it('catches up in batches, then tails appends of this process without polling', async () => {
    const store = openStore();
    await seed(store, 500);
    const progress: ProjectionProgress[] = [];
    const runner = new SqliteProjectionRunner(store, sqliteAccountsProjection(), {
      batchSize: 50,
      pollIntervalMs: 60_000,
      progressIntervalMs: 0,
      onProgress: (p) => progress.push(p),
    });
    await runner.start();
    await runner.waitUntilCaughtUp({ timeoutMs: 10_000 });
    await expectFolded(store);
    expect(progress.at(-1)).toMatchObject({ phase: 'catch-up', processed: 500, position: 500, done: true });
    expect(new SqliteCheckpointStore(store.database).get('accounts')).toEqual({ position: 500, version: 1 });

    await seed(store, 30);
    await runner.waitUntilCaughtUp({ timeoutMs: 5_000 });
    await expectFolded(store);
    await runner.stop();
    expect(runner.state).toBe('stopped');
  });

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

  it('stops on a handler that keeps failing, naming the event, with the read model at the checkpoint', async () => {
    const store = openStore();
    await seed(store, 100);
    const runner = new SqliteProjectionRunner(store, sqliteAccountsProjection({ failAt: { position: 77, armed: () => true } }), {
      batchSize: 30,
      retry: { maxAttempts: 2, initialDelayMs: 1 },
      onError: () => {},
    });
    await runner.start();
    const failing = (await store.readAll({ fromPosition: 77, limit: 1 }).toArray())[0]!;
    expect(failing.type).toBe('Deposited');
    await expect(runner.waitUntilCaughtUp()).rejects.toThrow(
      `Projection 'accounts' failed on event Deposited (stream '${failing.streamId}', version ${failing.version}, ` +
        `position 77) after 2 attempts: boom at 77. The runner stopped`,
    );
    expect(runner.state).toBe('failed');
    expect(runner.checkpoint?.position).toBe(76);
    const model = readSqliteAccounts(store.database);
    const expected = foldAccounts((await store.readAll().toArray()).filter((e) => e.position <= 76));
    expect(model.applied).toEqual(expected.applied);
    expect(model.accounts).toEqual(expected.accounts);
  });

  it('rebuilds with progress, and rebuilds by itself on a version bump', async () => {
    const store = openStore();
    await seed(store, 400);
    const first = new SqliteProjectionRunner(store, sqliteAccountsProjection());
    await first.start();
    await first.waitUntilCaughtUp();
    await first.stop();
    store.database.prepare("UPDATE accounts SET balance = 0 WHERE stream_id = 'account-1'").run();

    const progress: ProjectionProgress[] = [];
    const rebuilder = new SqliteProjectionRunner(store, sqliteAccountsProjection(), {
      batchSize: 40,
      progressIntervalMs: 0,
      onProgress: (p) => progress.push(p),
    });
    await rebuilder.rebuild({ timeoutMs: 10_000 });
    await rebuilder.stop();
    await expectFolded(store);
    const rebuild = progress.filter((p) => p.phase === 'rebuild');
    expect(rebuild.map((p) => p.position)).toEqual([0, 40, 80, 120, 160, 200, 240, 280, 320, 360, 400, 400]);
    expect(rebuild.at(-1)).toMatchObject({ processed: 400, headPosition: 400, done: true });

    const v2 = new SqliteProjectionRunner(store, sqliteAccountsProjection({ version: 2 }), { onProgress: (p) => progress.push(p) });
    await v2.start();
    await v2.waitUntilCaughtUp();
    await v2.stop();
    expect(progress.at(-1)).toMatchObject({ phase: 'rebuild', reason: 'version-changed', done: true });
    expect(new SqliteCheckpointStore(store.database).get('accounts')).toEqual({ position: 400, version: 2 });
    await expectFolded(store);
  });

  it('lets one runner run a projection; others wait (or fail), an expired lock is taken over', async () => {
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

  it('rejects a batch whose checkpoint moved underneath (a second writer), committing nothing', async () => {
    const store = openStore();
    await seed(store, 10);
    const checkpoints = new SqliteCheckpointStore(store.database);
    await checkpoints.save('accounts', undefined, { position: 3, version: 1 });
    await expect(checkpoints.save('accounts', { position: 2, version: 1 }, { position: 9, version: 1 })).rejects.toThrow(
      CheckpointConflictError,
    );
    expect(await checkpoints.load('accounts')).toEqual({ position: 3, version: 1 });
  });

  it('property: crashes inside or between batches, restarts — read model equals the fold, each event once', async () => {
    const eventArb = fc.record({
      stream: fc.integer({ min: 0, max: 3 }),
      kind: fc.constantFrom(0 as const, 1 as const, 2 as const),
      amount: fc.integer({ min: 1, max: 100 }),
    });
    await fc.assert(
      fc.asyncProperty(
        fc.array(eventArb, { minLength: 1, maxLength: 60 }),
        fc.array(fc.record({ at: fc.integer({ min: 1, max: 60 }), stopAfter: fc.boolean() }), { maxLength: 4 }),
        fc.integer({ min: 1, max: 16 }),
        async (kinds, crashes, batchSize) => {
          const store = openStore(':memory:');
          for (const plan of planEvents(kinds)) await store.append(plan.streamId, plan.events, { expectedVersion: 'any' });
          for (const crash of crashes) {
            let armed = true;
            // Either a handler throws at position `at` (a crash inside a batch), or the runner is
            // stopped once its checkpoint passes `at` (between batches).
            const runner = new SqliteProjectionRunner(
              store,
              sqliteAccountsProjection({ failAt: { position: crash.at, armed: () => armed && !crash.stopAfter } }),
              { batchSize, retry: { maxAttempts: 1 }, onError: () => {} },
            );
            await runner.start();
            if (crash.stopAfter) {
              while (runner.state !== 'live' && (runner.checkpoint?.position ?? 0) < crash.at) await new Promise((r) => setImmediate(r));
            } else {
              await runner.waitUntilCaughtUp().catch(() => undefined);
            }
            armed = false;
            await runner.stop();
          }
          const last = new SqliteProjectionRunner(store, sqliteAccountsProjection(), { batchSize });
          await last.start();
          await last.waitUntilCaughtUp();
          await last.stop();
          await expectFolded(store);
          await store.close();
        },
      ),
      { numRuns: 40 },
    );
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
