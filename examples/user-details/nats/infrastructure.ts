import { mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { consoleLogger, Repository, type ProjectionProgress } from 'eventfold';
import { NatsEventStore, NatsKeyStore, NatsSnapshotStore, NatsUniqueValues, natsWakeUps, type NatsStorage } from 'eventfold/nats';
import { SqliteEventStore, SqliteProjectionLock, SqliteProjectionTarget } from 'eventfold/sqlite';
import type { WriteSideOptions } from '../commands.js';
import { User } from '../domain/user.js';
import { evolveStore, type EvolvedStore } from '../evolution.js';
import type { Infrastructure, InfrastructureOptions, ProjectionMode, ReadSide } from '../infrastructure.js';
import { sqliteUserReadModel, sqliteUsersProjection } from '../read-model/sqlite-users.js';
import { createNatsWriteSide, userNameIsHeld } from './commands.js';

/**
 * The example on NATS JetStream (`EVENTFOLD_STORE=nats://host:4222`, a comma-separated list for a
 * cluster): events in a JetStream stream; snapshots, user-name reservations and the users' email
 * keys in KV buckets (`<stream>_snapshots`, `<stream>_names`, `<stream>_keys`); the same layers as
 * on SQLite and PostgreSQL (evolution.ts: validation, upcasting, emails encrypted per user,
 * idempotent commands, forget-me); and the users read model in a SQLite file of this process (`EVENTFOLD_READ_MODEL_PATH`, default
 * `<EVENTFOLD_DATA_DIR>/user-details-read.sqlite`) that a projection runner feeds from the
 * JetStream log, keeping its checkpoint in the same SQLite transaction (exactly once).
 *
 * Settings: `EVENTFOLD_NATS_STREAM` (default `USER_DETAILS`), `EVENTFOLD_NATS_REPLICAS` (default 1),
 * `EVENTFOLD_NATS_STORAGE` (`file` or `memory`, default `file`).
 */
export async function openNats(url: string, env: NodeJS.ProcessEnv = process.env, options: InfrastructureOptions = {}): Promise<Infrastructure> {
  const logger = options.logger ?? consoleLogger;
  const servers = url.split(',').map((part) => part.trim()).filter((part) => part !== '');
  const stream = env['EVENTFOLD_NATS_STREAM'] ?? 'USER_DETAILS';
  const replicas = Number(env['EVENTFOLD_NATS_REPLICAS'] ?? '1');
  const storage = (env['EVENTFOLD_NATS_STORAGE'] ?? 'file') as NatsStorage;
  const raw = await NatsEventStore.create({ servers, stream, subjectPrefix: stream.toLowerCase(), replicas, storage, logger });
  let keys: NatsKeyStore;
  let evolved: EvolvedStore;
  let snapshots: NatsSnapshotStore;
  try {
    // Forgetting erases the key's bytes from the servers' files (see NatsKeyStore).
    keys = await NatsKeyStore.create({ connection: raw.connection, bucket: `${stream}_keys`, replicas, storage, logger });
    evolved = evolveStore(raw, keys);
    snapshots = await NatsSnapshotStore.create({ connection: raw.connection, bucket: `${stream}_snapshots`, replicas, storage });
  } catch (error) {
    await raw.close();
    throw error;
  }
  const store = evolved.store;
  // Reads through the layers: a user's email decrypted (or redacted), old shapes upcast.
  const users = new Repository(store, User, { streamPrefix: 'user' });
  const names = new NatsUniqueValues({
    connection: raw.connection,
    bucket: `${stream}_names`,
    replicas,
    storage,
    isHeld: userNameIsHeld(users),
  });
  await names.migrate();
  const path = env['EVENTFOLD_READ_MODEL_PATH'] ?? resolve(env['EVENTFOLD_DATA_DIR'] ?? '.eventfold', 'user-details-read.sqlite');
  if (path !== ':memory:') mkdirSync(resolve(path, '..'), { recursive: true });
  // A SQLite store used only for its database: the read model and its checkpoint live there.
  const readDatabase = new SqliteEventStore({ path });
  // The read model holds emails in clear: once a user is forgotten, freed bytes are zeroed.
  readDatabase.database.pragma('secure_delete = ON');
  const readModel = sqliteUserReadModel(readDatabase.database);
  const sides: ReadSide[] = [];
  return {
    kind: 'nats',
    description: `NATS JetStream (${servers.join(', ')}, stream ${stream}); read model in the SQLite file ${path}`,
    store,
    evolved,
    snapshots: evolved.snapshots(snapshots),
    readModel,
    writeSide: (options: WriteSideOptions) => createNatsWriteSide({ ...options, names }),
    async startReadSide(mode: ProjectionMode, onProgress?: (progress: ProjectionProgress) => void): Promise<ReadSide> {
      const side = await startNatsReadSide(mode, () =>
        evolved.runner(
          sqliteUsersProjection,
          { target: new SqliteProjectionTarget(readDatabase), lock: new SqliteProjectionLock(readDatabase.database), wakeUps: natsWakeUps(raw) },
          { pollIntervalMs: 250, logger, ...(onProgress === undefined ? {} : { onProgress }) },
        ),
      );
      sides.push(side);
      return side;
    },
    async close() {
      for (const side of sides) await side.stop();
      await names.close();
      await snapshots.close();
      await keys.close();
      await raw.close();
      await readDatabase.close();
    },
  };
}

/** NATS has no append hooks, so 'inline' runs the projection asynchronously as well. */
interface Runner {
  start(): Promise<void>;
  rebuild(options?: { timeoutMs?: number }): Promise<void>;
  stop(): Promise<void>;
  waitUntilCaughtUp(options?: { timeoutMs?: number }): Promise<void>;
}

async function startNatsReadSide(mode: ProjectionMode, create: () => Runner): Promise<ReadSide> {
  const nothing = async (): Promise<void> => undefined;
  if (mode === 'none') return { mode, caughtUp: nothing, rebuild: nothing, stop: nothing };
  const runner = create();
  await runner.start();
  let stopped = false;
  return {
    mode: 'async',
    caughtUp: () => runner.waitUntilCaughtUp({ timeoutMs: 60_000 }),
    rebuild: () => runner.rebuild({ timeoutMs: 600_000 }),
    stop: async () => {
      if (stopped) return;
      stopped = true;
      await runner.stop();
    },
  };
}
