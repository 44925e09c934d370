import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, it } from 'vitest';
import { ProjectionRunner } from '../src/index.js';
import { natsWakeUps, type NatsEventStore } from '../src/nats/index.js';
import { SqliteCheckpointStore, SqliteEventStore, SqliteProjectionLock, SqliteProjectionTarget } from '../src/sqlite/index.js';
import { describeProjectionConformance } from '../src/testing/projection-conformance.js';
import { damageSqliteAccounts, readSqliteAccounts, sqliteAccountsProjection } from './fixtures/projection-sqlite-accounts.js';
import { natsStores } from './support/nats.js';

/**
 * The projection conformance suite with the NATS JetStream log as the source (positions with gaps:
 * sequence × 10,000 + index) and a SQLite read model as the target (checkpoint in the read
 * model's transaction, one runner at a time by its lock), woken by NATS. JetStream runs no code
 * inside an append, so the inline case is not part of it (`inline: false`); it has no atomic
 * multi-stream append, so the suite seeds one stream per append.
 */
const stores = natsStores('projconf');
const dir = mkdtempSync(join(tmpdir(), 'eventfold-nats-projconf-'));
let files = 0;
afterAll(async () => {
  await stores.cleanup();
  rmSync(dir, { recursive: true, force: true });
});

describeProjectionConformance(
  'NATS JetStream → SQLite',
  async () => {
    const store: NatsEventStore = await stores.create();
    const read = new SqliteEventStore({ path: join(dir, `read-${++files}.sqlite`), synchronous: 'NORMAL' });
    return {
      store,
      checkpoints: new SqliteCheckpointStore(read.database),
      accounts: (options) => sqliteAccountsProjection(options),
      runner: (projection, settings) =>
        new ProjectionRunner({
          ...settings,
          store,
          projection,
          target: new SqliteProjectionTarget(read),
          lock: new SqliteProjectionLock(read.database),
          wakeUps: natsWakeUps(store),
        }),
      readModel: () => readSqliteAccounts(read.database),
      damage: () => damageSqliteAccounts(read.database),
      close: async () => {
        await read.close();
        await store.close();
      },
    };
  },
  { framework: { describe, it }, propertyRuns: 15, inline: false, timeoutMs: 30_000 },
);
