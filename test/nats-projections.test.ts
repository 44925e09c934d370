import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { AtLeastOnceTarget, InMemoryProjectionLock, ProjectionRunner, defineProjection } from '../src/index.js';
import { NatsCheckpointStore, natsWakeUps, type NatsEventStore } from '../src/nats/index.js';
import { PostgresEventStore, PostgresProjectionLock, PostgresProjectionTarget } from '../src/postgres/index.js';
import { SqliteEventStore, SqliteProjectionLock, SqliteProjectionTarget } from '../src/sqlite/index.js';
import { foldAccounts, planEvents, type AccountEvent, type AccountsReadModel } from './fixtures/projection-model.js';
import { postgresAccountsProjection, readPostgresAccounts } from './fixtures/projection-postgres-accounts.js';
import { readSqliteAccounts, sqliteAccountsProjection } from './fixtures/projection-sqlite-accounts.js';
import { waitFor } from './support/nats-cluster.js';
import { natsStores } from './support/nats.js';
import { pgTestDatabase } from './support/postgres.js';

/**
 * Read models in SQLite and PostgreSQL fed from the NATS JetStream log by the generic projection
 * runner (checkpoint in the read model's own transaction), and an at-least-once target with its
 * checkpoint in JetStream KV.
 */
const stores = natsStores('proj');
const db = pgTestDatabase({ max: 4 });
const dir = mkdtempSync(join(tmpdir(), 'eventfold-nats-proj-'));
afterAll(async () => {
  await stores.cleanup();
  await db.cleanup();
  rmSync(dir, { recursive: true, force: true });
});

let seedCounter = 0;
async function seed(store: NatsEventStore, count: number): Promise<void> {
  const kinds = Array.from({ length: count }, (_, i) => ({ stream: (i * 7 + seedCounter) % 9, kind: (i % 5 === 4 ? 1 : i % 7 === 6 ? 2 : 0) as 0 | 1 | 2, amount: (i % 50) + 1 }));
  seedCounter++;
  for (const append of planEvents(kinds)) await store.append(append.streamId, append.events, { expectedVersion: 'any' });
}

function sameAsFold(model: AccountsReadModel, log: Parameters<typeof foldAccounts>[0]): void {
  const fold = foldAccounts(log);
  expect(Object.fromEntries(model.accounts)).toEqual(Object.fromEntries(fold.accounts));
  // Each applied event once: exactly once, across the stop and the restart.
  expect(model.applied.map((a) => a.position)).toEqual(fold.applied);
}

describe('projections from the NATS JetStream log', () => {
  it('into SQLite: catches up, follows live appends woken by NATS, resumes after a stop without applying anything twice', async () => {
    const store = await stores.create();
    await seed(store, 120);
    const read = new SqliteEventStore({ path: join(dir, 'read.sqlite') });
    const make = () =>
      new ProjectionRunner({
        store,
        projection: sqliteAccountsProjection(),
        target: new SqliteProjectionTarget(read),
        lock: new SqliteProjectionLock(read.database),
        wakeUps: natsWakeUps(store),
        batchSize: 25,
        pollIntervalMs: 60_000, // only NATS wake-ups bring it news in time
      });
    const runner = make();
    await runner.start();
    await runner.waitUntilCaughtUp({ timeoutMs: 30_000 });
    sameAsFold(readSqliteAccounts(read.database), await store.readAll().toArray());
    await seed(store, 40);
    const head = await store.headPosition();
    await waitFor('the live runner to apply new events', () => runner.status.position >= head, 30_000);
    await runner.stop();
    await seed(store, 30);
    const again = make();
    await again.start();
    await again.waitUntilCaughtUp({ timeoutMs: 30_000 });
    await again.stop();
    sameAsFold(readSqliteAccounts(read.database), await store.readAll().toArray());
    await read.close();
  });

  it('into PostgreSQL: the same, with the checkpoint in the read model transaction', async () => {
    const store = await stores.create();
    await seed(store, 80);
    const pgStore = new PostgresEventStore({ pool: db.pool, schema: db.schema('natsproj') });
    await pgStore.migrate();
    const runner = new ProjectionRunner({
      store,
      projection: postgresAccountsProjection({ schema: pgStore.schema }),
      target: new PostgresProjectionTarget(pgStore),
      lock: new PostgresProjectionLock(db.pool, pgStore.schema),
      wakeUps: natsWakeUps(store),
      batchSize: 16,
    });
    await runner.start();
    await seed(store, 20);
    await runner.waitUntilCaughtUp({ timeoutMs: 30_000 });
    await runner.stop();
    sameAsFold(await readPostgresAccounts(db.pool, pgStore.schema), await store.readAll().toArray());
  });

  it('at least once into an in-memory map, with the checkpoint in JetStream KV', async () => {
    const store = await stores.create();
    await seed(store, 60);
    const checkpoints = new NatsCheckpointStore({ connection: store.connection, bucket: stores.bucket('cps'), storage: 'memory' });
    const balances = new Map<string, number>();
    const seen = new Set<string>();
    const projection = defineProjection<AccountEvent, Map<string, number>>({
      name: 'balances',
      handlers: {
        // Idempotent by event id: a replayed batch changes nothing.
        Deposited: (e, map) => {
          if (!seen.has(e.eventId)) map.set(e.streamId, (map.get(e.streamId) ?? 0) + e.data.amount);
          seen.add(e.eventId);
        },
        Withdrawn: (e, map) => {
          if (!seen.has(e.eventId)) map.set(e.streamId, (map.get(e.streamId) ?? 0) - e.data.amount);
          seen.add(e.eventId);
        },
      },
    });
    const runner = new ProjectionRunner({
      store,
      projection,
      target: new AtLeastOnceTarget({ checkpoints, context: () => balances }),
      lock: new InMemoryProjectionLock(),
      batchSize: 10,
    });
    await runner.start();
    await runner.waitUntilCaughtUp({ timeoutMs: 30_000 });
    await runner.stop();
    const fold = foldAccounts(await store.readAll().toArray());
    expect(Object.fromEntries(balances)).toEqual(Object.fromEntries([...fold.accounts].map(([k, v]) => [k, v.balance])));
    expect((await checkpoints.load('balances'))?.position).toBe(await store.headPosition());
  });
});
