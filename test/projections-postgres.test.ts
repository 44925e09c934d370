import { spawn, type ChildProcess } from 'node:child_process';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import {
  CheckpointConflictError,
  ProjectionHandlerError,
  ProjectionLockedError,
  type ProjectionProgress,
} from '../src/projections/index.js';
import { PostgresEventStore } from '../src/postgres/postgres-event-store.js';
import {
  addInlinePostgresProjection,
  PostgresCheckpointStore,
  PostgresProjectionRunner,
} from '../src/postgres/projections.js';
import { foldAccounts, planEvents } from './fixtures/projection-model.js';
import { postgresAccountsProjection, readPostgresAccounts } from './fixtures/projection-postgres-accounts.js';
import { DATABASE_URL, pgTestDatabase } from './support/postgres.js';

const db = pgTestDatabase({ max: 20 });
const stores: PostgresEventStore[] = [];
const children: ChildProcess[] = [];
afterAll(async () => {
  for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
  for (const store of stores) await store.close();
  await db.cleanup();
});

async function openStore(tag = 'proj'): Promise<PostgresEventStore> {
  const store = await PostgresEventStore.create({ pool: db.pool, schema: db.schema(tag), pageSize: 64 });
  stores.push(store);
  return store;
}

/** Appends `count` events over `streams` streams, a few streams per appendMany. */
async function seed(store: PostgresEventStore, count: number, streams = 4): Promise<void> {
  for (let i = 0; i < count; i += 40) {
    const byStream = new Map<string, { type: string; data: unknown }[]>();
    for (let j = i; j < Math.min(i + 40, count); j++) {
      const streamId = `account-${j % streams}`;
      const type = j % 5 === 4 ? 'Withdrawn' : j % 7 === 6 ? 'Noted' : 'Deposited';
      byStream.set(streamId, [...(byStream.get(streamId) ?? []), { type, data: { amount: j + 1, text: 'x' } }]);
    }
    await store.appendMany([...byStream].map(([streamId, events]) => ({ streamId, events, expectedVersion: 'any' as const })));
  }
}

async function expectFolded(store: PostgresEventStore): Promise<void> {
  const expected = foldAccounts(await store.readAll().toArray());
  const actual = await readPostgresAccounts(store.pool, store.schema);
  expect(actual.accounts).toEqual(expected.accounts);
  expect(actual.applied).toEqual(expected.applied);
}

function spawnRunner(schema: string, runnerId: string, delayMs: number, batchSize = 20): { child: ChildProcess; output: () => string } {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', 'test/fixtures/projection-postgres-child.ts', DATABASE_URL, schema, String(batchSize), String(delayMs), runnerId],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  children.push(child);
  let out = '';
  child.stdout!.on('data', (chunk: Buffer) => (out += chunk.toString()));
  return { child, output: () => out };
}

describe('inline projections (PostgreSQL)', () => {
  it('commits with the append, and a failing handler rolls back events and read model together', async () => {
    const store = await openStore();
    let armed = true;
    const remove = await addInlinePostgresProjection(
      store,
      postgresAccountsProjection({ schema: store.schema, failAt: { position: 3, armed: () => armed } }),
    );
    await store.append('account-1', [{ type: 'Deposited', data: { amount: 10 } }], { expectedVersion: 'no-stream' });
    await store.append('account-2', [{ type: 'Deposited', data: { amount: 7 } }], { expectedVersion: 'no-stream' });
    await expectFolded(store);

    const failing = store.appendMany([
      { streamId: 'account-1', events: [{ type: 'Withdrawn', data: { amount: 5 } }], expectedVersion: 1 },
      { streamId: 'account-3', events: [{ type: 'Deposited', data: { amount: 1 } }], expectedVersion: 'no-stream' },
    ]);
    await expect(failing).rejects.toThrow(ProjectionHandlerError);
    await expect(failing).rejects.toThrow(/Withdrawn \(stream 'account-1', version 2, position 3\): boom at 3/);
    expect(await store.streamVersion('account-3')).toBe(0);
    expect(await store.streamVersion('account-1')).toBe(1);
    await expectFolded(store);

    armed = false;
    await store.append('account-1', [{ type: 'Withdrawn', data: { amount: 5 } }], { expectedVersion: 1 });
    await expectFolded(store);
    const model = await readPostgresAccounts(store.pool, store.schema);
    expect(model.accounts.get('account-1')).toEqual({ balance: 5, events: 2, lastVersion: 2 });
    remove();
  });
});

describe('PostgresProjectionRunner', () => {
  it('catches up in batches, then tails new appends woken by NOTIFY', async () => {
    const store = await openStore();
    await seed(store, 300);
    const progress: ProjectionProgress[] = [];
    const runner = new PostgresProjectionRunner(store, postgresAccountsProjection({ schema: store.schema }), {
      batchSize: 50,
      pollIntervalMs: 60_000, // only NOTIFY can wake it in time
      progressIntervalMs: 0,
      onProgress: (p) => progress.push(p),
    });
    await runner.start();
    await runner.waitUntilCaughtUp({ timeoutMs: 20_000 });
    await expectFolded(store);
    expect(progress.at(-1)).toMatchObject({ phase: 'catch-up', processed: 300, position: 300, done: true });
    expect(await new PostgresCheckpointStore(store.pool, store.schema).load('accounts')).toEqual({ position: 300, version: 1 });

    // The LISTEN connection is set up right after the lock; give it a moment before relying on it.
    await expect.poll(() => runner.state).toBe('live');
    await new Promise((r) => setTimeout(r, 200));
    await seed(store, 17);
    await runner.waitUntilCaughtUp({ timeoutMs: 5_000 });
    await expectFolded(store);
    await runner.stop();
  });

  it('stops on a handler that keeps failing, naming the event, with the read model at the checkpoint', async () => {
    const store = await openStore();
    await seed(store, 120);
    const failing = (await store.readAll({ fromPosition: 77, limit: 1 }).toArray())[0]!;
    expect(failing.type).toBe('Deposited');
    const runner = new PostgresProjectionRunner(
      store,
      postgresAccountsProjection({ schema: store.schema, failAt: { position: 77, armed: () => true } }),
      { batchSize: 30, retry: { maxAttempts: 3, initialDelayMs: 5 }, onError: () => {} },
    );
    await runner.start();
    await expect(runner.waitUntilCaughtUp()).rejects.toThrow(
      `Projection 'accounts' failed on event Deposited (stream '${failing.streamId}', version ${failing.version}, ` +
        `position 77) after 3 attempts: boom at 77`,
    );
    const status = await runner.whenStopped();
    expect(status).toMatchObject({ state: 'failed', position: 76 });
    const model = await readPostgresAccounts(store.pool, store.schema);
    const expected = foldAccounts((await store.readAll().toArray()).filter((e) => e.position <= 76));
    expect(model).toEqual(expected);
  });

  it('rebuilds with progress, and rebuilds by itself on a version bump', async () => {
    const store = await openStore();
    await seed(store, 200);
    const first = new PostgresProjectionRunner(store, postgresAccountsProjection({ schema: store.schema }), { batchSize: 100 });
    await first.start();
    await first.waitUntilCaughtUp();
    await first.stop();
    await store.pool.query(`UPDATE "${store.schema}".accounts SET balance = 0`);

    const progress: ProjectionProgress[] = [];
    const rebuilder = new PostgresProjectionRunner(store, postgresAccountsProjection({ schema: store.schema }), {
      batchSize: 50,
      progressIntervalMs: 0,
      onProgress: (p) => progress.push(p),
    });
    await rebuilder.rebuild({ timeoutMs: 20_000 });
    await rebuilder.stop();
    await expectFolded(store);
    expect(progress.map((p) => [p.phase, p.position, p.done])).toEqual([
      ['rebuild', 0, false],
      ['rebuild', 50, false],
      ['rebuild', 100, false],
      ['rebuild', 150, false],
      ['rebuild', 200, false],
      ['rebuild', 200, true],
    ]);

    const v2 = new PostgresProjectionRunner(store, postgresAccountsProjection({ schema: store.schema, version: 2 }), {
      onProgress: (p) => progress.push(p),
    });
    await v2.start();
    await v2.waitUntilCaughtUp();
    await v2.stop();
    expect(progress.at(-1)).toMatchObject({ phase: 'rebuild', reason: 'version-changed', done: true, processed: 200 });
    expect(await new PostgresCheckpointStore(store.pool, store.schema).load('accounts')).toEqual({ position: 200, version: 2 });
    await expectFolded(store);
  });

  it('lets one runner of a process run a projection; the other waits, or fails when told to', async () => {
    const store = await openStore();
    await seed(store, 150);
    const a = new PostgresProjectionRunner(store, postgresAccountsProjection({ schema: store.schema, runnerId: 'a' }), { lockRetryMs: 20 });
    const b = new PostgresProjectionRunner(store, postgresAccountsProjection({ schema: store.schema, runnerId: 'b' }), { lockRetryMs: 20 });
    await a.start();
    await b.start();
    expect(b.state).toBe('waiting-for-lock');
    await a.waitUntilCaughtUp();
    await expect(
      new PostgresProjectionRunner(store, postgresAccountsProjection({ schema: store.schema }), { whenLocked: 'fail' }).start(),
    ).rejects.toThrow(ProjectionLockedError);
    await a.stop();
    await seed(store, 40);
    await b.waitUntilCaughtUp({ timeoutMs: 10_000 });
    await b.stop();
    const runners = await store.pool.query(`SELECT runner, count(*)::int AS n FROM "${store.schema}".applied GROUP BY runner ORDER BY runner`);
    const expected = foldAccounts(await store.readAll().toArray());
    const byA = expected.applied.filter((p) => p <= 150).length;
    expect(runners.rows).toEqual([
      { runner: 'a', n: byA },
      { runner: 'b', n: expected.applied.length - byA },
    ]);
    await expectFolded(store);
  });

  it('stops with PROJECTION_LOCK_LOST when the connection holding its advisory lock is killed', async () => {
    const store = await openStore();
    await seed(store, 20);
    const runner = new PostgresProjectionRunner(store, postgresAccountsProjection({ schema: store.schema }), {
      pollIntervalMs: 50,
      onError: () => {},
    });
    await runner.start();
    await runner.waitUntilCaughtUp();
    const killed = await store.pool.query(
      `SELECT pg_terminate_backend(pid) AS killed FROM pg_locks
       WHERE locktype = 'advisory' AND granted AND objsubid = 1
         AND ((classid::int8 << 32) | objid::int8) = hashtextextended($1, 0)`,
      [`eventfold.projection:${store.schema}.accounts`],
    );
    expect(killed.rows).toEqual([{ killed: true }]);
    const status = await runner.whenStopped();
    expect(status.state).toBe('failed');
    expect(status.error).toMatchObject({ code: 'PROJECTION_LOCK_LOST', projection: 'accounts' });
    // The lock is free again: a new runner takes it at once.
    const next = new PostgresProjectionRunner(store, postgresAccountsProjection({ schema: store.schema }), { whenLocked: 'fail' });
    await next.start();
    await next.waitUntilCaughtUp();
    await next.stop();
    await expectFolded(store);
  });

  it('a stale runner whose checkpoint moved cannot commit (compare-and-set), nothing is written', async () => {
    const store = await openStore();
    const checkpoints = new PostgresCheckpointStore(store.pool, store.schema);
    await checkpoints.save('accounts', undefined, { position: 5, version: 1 });
    await expect(checkpoints.save('accounts', undefined, { position: 9, version: 1 })).rejects.toThrow(CheckpointConflictError);
    await expect(checkpoints.save('accounts', { position: 4, version: 1 }, { position: 9, version: 1 })).rejects.toThrow(
      /Checkpoint of projection 'accounts' is position 5 \(version 1\) but this runner expected position 4/,
    );
    expect(await checkpoints.load('accounts')).toEqual({ position: 5, version: 1 });
  });

  it('across processes: one of two runners processes; killing it (SIGKILL, mid-batch) hands over with exactly-once effect', async () => {
    const store = await openStore('xproc');
    // Create the read model tables before the children race for them.
    await store.withTransaction(async (client) => {
      await postgresAccountsProjection({ schema: store.schema }).setup!({ client });
    });
    await seed(store, 600);
    const first = spawnRunner(store.schema, 'p1', 2);
    await expect.poll(() => /"runner":"p1","state":"catching-up"/.test(first.output()), { timeout: 20_000 }).toBe(true);
    const second = spawnRunner(store.schema, 'p2', 0);
    await expect.poll(() => second.output().includes('"state":"waiting-for-lock"'), { timeout: 20_000 }).toBe(true);
    // p1 is mid catch-up (2 ms per event); p2 waits. Only p1 has applied anything.
    await new Promise((r) => setTimeout(r, 400));
    const before = await store.pool.query(`SELECT DISTINCT runner FROM "${store.schema}".applied`);
    expect(before.rows).toEqual([{ runner: 'p1' }]);
    first.child.kill('SIGKILL');
    await new Promise((r) => first.child.once('exit', r));
    const killedAt = (await new PostgresCheckpointStore(store.pool, store.schema).load('accounts'))?.position ?? 0;
    expect(killedAt).toBeLessThan(600);
    await seed(store, 50);
    const head = await store.headPosition();
    await expect
      .poll(async () => (await new PostgresCheckpointStore(store.pool, store.schema).load('accounts'))?.position, { timeout: 30_000 })
      .toBe(head);
    second.child.kill('SIGTERM');
    await expectFolded(store);
    const split = await store.pool.query(`SELECT runner, min(position)::int AS lo FROM "${store.schema}".applied GROUP BY runner ORDER BY runner`);
    expect(split.rows.map((r) => r.runner)).toEqual(['p1', 'p2']);
    expect(split.rows[1].lo).toBeGreaterThan(killedAt);
  });

  it('property: crashes inside or between batches, restarts — read model equals the fold, each event once', async () => {
    const eventArb = fc.record({
      stream: fc.integer({ min: 0, max: 3 }),
      kind: fc.constantFrom(0 as const, 1 as const, 2 as const),
      amount: fc.integer({ min: 1, max: 100 }),
    });
    await fc.assert(
      fc.asyncProperty(
        fc.array(eventArb, { minLength: 1, maxLength: 40 }),
        fc.array(fc.record({ at: fc.integer({ min: 1, max: 40 }), stopAfter: fc.boolean() }), { maxLength: 3 }),
        fc.integer({ min: 1, max: 12 }),
        async (kinds, crashes, batchSize) => {
          const store = await openStore('prop');
          for (const plan of planEvents(kinds)) await store.append(plan.streamId, plan.events, { expectedVersion: 'any' });
          for (const crash of crashes) {
            let armed = true;
            const runner = new PostgresProjectionRunner(
              store,
              postgresAccountsProjection({ schema: store.schema, failAt: { position: crash.at, armed: () => armed && !crash.stopAfter } }),
              { batchSize, retry: { maxAttempts: 1 }, onError: () => {} },
            );
            await runner.start();
            if (crash.stopAfter) {
              while (runner.state !== 'live' && (runner.checkpoint?.position ?? 0) < crash.at) await new Promise((r) => setTimeout(r, 1));
            } else {
              await runner.waitUntilCaughtUp().catch(() => undefined);
            }
            armed = false;
            await runner.stop();
          }
          const last = new PostgresProjectionRunner(store, postgresAccountsProjection({ schema: store.schema }), { batchSize });
          await last.start();
          await last.waitUntilCaughtUp();
          await last.stop();
          await expectFolded(store);
        },
      ),
      { numRuns: 15 },
    );
  });
});
