import { spawn, type ChildProcess } from 'node:child_process';
import { afterAll, describe, expect, it } from 'vitest';
import { PostgresEventStore } from '../src/postgres/postgres-event-store.js';
import {
  addInlinePostgresProjection,
  PostgresCheckpointStore,
  PostgresProjectionRunner,
} from '../src/postgres/projections.js';
import { describeProjectionConformance } from '../src/testing/projection-conformance.js';
import { damagePostgresAccounts, postgresAccountsProjection, readPostgresAccounts } from './fixtures/projection-postgres-accounts.js';
import { DATABASE_URL, pgTestDatabase } from './support/postgres.js';
import { expectFoldedAccounts, seedAccounts } from './support/projection-accounts.js';

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

function expectFolded(store: PostgresEventStore): Promise<void> {
  return expectFoldedAccounts(store, () => readPostgresAccounts(store.pool, store.schema));
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

// The store-independent behaviour (inline commit/rollback, catch-up and a live tail woken by NOTIFY
// alone, failures, unknown events, rebuilds, one runner at a time, checkpoint compare-and-set, the
// crash property) runs from the shared suite, in a fresh schema each.
describeProjectionConformance(
  'PostgreSQL',
  async () => {
    const store = await openStore();
    return {
      store,
      checkpoints: new PostgresCheckpointStore(store.pool, store.schema),
      accounts: (options) => postgresAccountsProjection({ ...options, schema: store.schema }),
      runner: (projection, settings) => new PostgresProjectionRunner(store, projection, settings),
      addInline: (projection) => addInlinePostgresProjection(store, projection),
      readModel: () => readPostgresAccounts(store.pool, store.schema),
      damage: () => damagePostgresAccounts(store.pool, store.schema),
      close: () => store.close(),
    };
  },
  // The LISTEN connection is set up right after the lock; give it a moment before relying on it.
  { framework: { describe, it }, propertyRuns: 15, wakeUpSettleMs: 200 },
);

describe('PostgresProjectionRunner (PostgreSQL specific)', () => {
  it('takes its advisory lock again when the connection holding it is killed, and carries on', async () => {
    const store = await openStore();
    await seedAccounts(store, 20);
    const errors: { code: unknown; transient: boolean }[] = [];
    const runner = new PostgresProjectionRunner(store, postgresAccountsProjection({ schema: store.schema }), {
      pollIntervalMs: 50,
      retry: { initialDelayMs: 10, maxDelayMs: 100 },
      onError: (error, info) => errors.push({ code: (error as { code?: unknown }).code, transient: info.transient }),
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
    await expect.poll(() => errors.some((e) => e.code === 'PROJECTION_LOCK_LOST' && e.transient), { timeout: 20_000 }).toBe(true);
    await seedAccounts(store, 20);
    await runner.waitUntilCaughtUp({ timeoutMs: 30_000 });
    expect(runner.state).not.toBe('failed');
    // It holds the lock again: another runner told not to wait is refused.
    await expect.poll(() => runner.state, { timeout: 20_000 }).toBe('live');
    const other = new PostgresProjectionRunner(store, postgresAccountsProjection({ schema: store.schema }), { whenLocked: 'fail' });
    await expect(other.start()).rejects.toMatchObject({ code: 'PROJECTION_LOCKED' });
    await runner.stop();
    await expectFolded(store);
  });

  it('across processes: one of two runners processes; killing it (SIGKILL, mid-batch) hands over with exactly-once effect', async () => {
    const store = await openStore('xproc');
    // Create the read model tables before the children race for them.
    await store.withTransaction(async (client) => {
      await postgresAccountsProjection({ schema: store.schema }).setup!({ client });
    });
    await seedAccounts(store, 600);
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
    await seedAccounts(store, 50);
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
});
