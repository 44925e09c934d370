import { existsSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import type { EventStoreCatalog } from '../store/catalog.js';
import type { EventStore } from '../store/event-store.js';
import {
  natsKvCheckpoints,
  openCheckpointLocation,
  postgresCheckpoints,
  redactUrl,
  sqliteCheckpoints,
  type CheckpointSetting,
  type EventSource,
  type ProjectionAdmin,
} from './checkpoint-locations.js';
import type { StoreSetting } from './config.js';
import { CliUsageError, DriverMissingError } from './errors.js';
import { natsCatalog } from './nats-catalog.js';

export type { ProjectionAdmin };
export { redactUrl };

/** KV bucket a `NatsCheckpointStore` uses by default, where the CLI looks on a NATS store without --checkpoints. */
export const DEFAULT_NATS_CHECKPOINT_BUCKET = 'eventfold_checkpoints';

/** An open store plus what tools need around it. */
export interface OpenedStore {
  readonly kind: string;
  /** Printable: no password. */
  readonly description: string;
  readonly store: EventStore;
  readonly catalog: EventStoreCatalog | undefined;
  readonly projections: ProjectionAdmin | undefined;
  close(): Promise<void>;
}

export interface OpenOptions {
  readonly cwd: string;
  /** PostgreSQL schema. */
  readonly schema: string | undefined;
  /** Create / upgrade the schema (the `migrate` command); otherwise the store must exist. */
  readonly migrate: boolean;
  /** Where projection checkpoints live when not in the store itself (`--checkpoints`, config `checkpoints`). */
  readonly checkpoints?: CheckpointSetting | undefined;
}

/** The store's projection bookkeeping: `--checkpoints` when given, else `fallback` (the store's own). */
async function projectionAdmin(options: OpenOptions, source: EventSource, fallback: () => Promise<ProjectionAdmin>): Promise<ProjectionAdmin> {
  if (options.checkpoints !== undefined) return openCheckpointLocation(importDriver, options.checkpoints, options.cwd, source);
  return fallback();
}

/** Opens the bookkeeping, closing `store` when that fails. */
async function withAdmin(store: EventStore, open: () => Promise<ProjectionAdmin>): Promise<ProjectionAdmin> {
  try {
    return await open();
  } catch (error) {
    await store.close().catch(() => undefined);
    throw error;
  }
}

/**
 * One kind of store the CLI can open. Adding an engine is one entry in `STORE_DRIVERS`: a test
 * on the target string and an `open` that imports its adapter lazily (through `importDriver`, so
 * a missing driver package becomes a clear `DriverMissingError`).
 */
export interface StoreDriver {
  readonly kind: string;
  matches(target: string): boolean;
  open(target: string, options: OpenOptions): Promise<OpenedStore>;
}

function missingPackage(error: unknown, packageNames: readonly string[]): string | undefined {
  const e = error as { code?: unknown; message?: unknown } | null;
  if (typeof e !== 'object' || e === null || (e.code !== 'ERR_MODULE_NOT_FOUND' && e.code !== 'MODULE_NOT_FOUND')) return undefined;
  const message = typeof e.message === 'string' ? e.message : '';
  return packageNames.find((name) => message.includes(`'${name}'`) || message.includes(`'${name}/`));
}

/**
 * Imports an adapter whose driver is an optional peer; a missing driver package (one of
 * `packageNames`) becomes `DriverMissingError` naming it.
 */
export async function importDriver<M>(load: () => Promise<M>, packageNames: string | readonly string[], what: string): Promise<M> {
  try {
    return await load();
  } catch (error) {
    const missing = missingPackage(error, typeof packageNames === 'string' ? [packageNames] : packageNames);
    if (missing !== undefined) throw new DriverMissingError(missing, what, { cause: error });
    throw error;
  }
}

const sqliteDriver: StoreDriver = {
  kind: 'sqlite',
  matches: (target) => !/^[a-z][a-z0-9+.-]*:\/\//i.test(target),
  async open(target, options) {
    const given = target.replace(/^sqlite:/i, '');
    const path = given === ':memory:' || isAbsolute(given) ? given : resolve(options.cwd, given);
    if (path !== ':memory:' && !options.migrate && !existsSync(path)) {
      throw new CliUsageError(`There is no SQLite database at '${given}'. Create it with: eventfold migrate --db ${given}`);
    }
    const sqlite = await importDriver(() => import('../sqlite/index.js'), 'better-sqlite3', 'A SQLite store');
    const store = new sqlite.SqliteEventStore({ path });
    const catalog = new sqlite.SqliteCatalog(store);
    const source: EventSource = { store, wakeUps: (listener) => store.onAppended(() => listener()) };
    const projections = await withAdmin(store, () =>
      projectionAdmin(options, source, () => sqliteCheckpoints(importDriver, path, `SQLite ${given}`, source, store)),
    );
    return {
      kind: 'sqlite',
      description: `SQLite ${given}`,
      store,
      catalog,
      projections,
      close: async () => {
        await projections.close().catch(() => undefined);
        await store.close();
      },
    };
  },
};

const postgresDriver: StoreDriver = {
  kind: 'postgres',
  matches: (target) => /^postgres(ql)?:\/\//i.test(target),
  async open(target, options) {
    const postgres = await importDriver(() => import('../postgres/index.js'), 'pg', 'A PostgreSQL store');
    const schema = options.schema ?? postgres.DEFAULT_POSTGRES_SCHEMA;
    // One connection is plenty for a tool; fail fast when the server is not there.
    const store = new postgres.PostgresEventStore({
      connectionString: target,
      schema,
      notify: 'off',
      poolConfig: { max: 4, connectionTimeoutMillis: 10_000, application_name: 'eventfold-cli' },
    });
    try {
      if (options.migrate) await store.migrate();
      else await store.headPosition();
    } catch (error) {
      await store.close().catch(() => undefined);
      throw error;
    }
    const catalog = new postgres.PostgresCatalog(store);
    const description = `PostgreSQL ${redactUrl(target)} (schema ${schema})`;
    const source: EventSource = { store, wakeUps: postgres.postgresWakeUps(store) };
    const projections = await withAdmin(store, () =>
      projectionAdmin(options, source, () => postgresCheckpoints(importDriver, store, description, source, false)),
    );
    return {
      kind: 'postgres',
      description,
      store,
      catalog,
      projections,
      close: async () => {
        await projections.close().catch(() => undefined);
        await store.close();
      },
    };
  },
};

/**
 * NATS JetStream: `nats://host:port`, with the JetStream stream and subject prefix as query
 * parameters (`?stream=EVENTS&subjectPrefix=app`; defaults as `NatsEventStore`'s). A cluster:
 * several URLs separated by commas. Streams are listed by `natsCatalog`. Projection checkpoints
 * are where the runners keep them: `--checkpoints` (the read model's SQLite file or PostgreSQL
 * schema, or a KV bucket), by default the KV bucket `eventfold_checkpoints`.
 */
const natsDriver: StoreDriver = {
  kind: 'nats',
  matches: (target) => /^nats:\/\//i.test(target),
  async open(target, options) {
    const nats = await importDriver(() => import('../nats/index.js'), ['@nats-io/transport-node', '@nats-io/jetstream'], 'A NATS store');
    const servers: string[] = [];
    const settings: { stream?: string; subjectPrefix?: string } = {};
    for (const part of target.split(',')) {
      let url: URL;
      try {
        url = new URL(part.trim());
      } catch {
        throw new CliUsageError(`'${redactUrl(part)}' is not a valid NATS URL.`);
      }
      for (const [key, value] of url.searchParams) {
        if (key === 'stream' || key === 'subjectPrefix') settings[key] = value;
        else throw new CliUsageError(`Unknown NATS URL parameter '${key}': use stream and subjectPrefix.`);
      }
      url.search = '';
      servers.push(url.toString());
    }
    const stream = settings.stream ?? options.schema;
    const storeOptions = {
      servers,
      connectionOptions: { timeout: 10_000, maxReconnectAttempts: 3 },
      ...(stream !== undefined ? { stream } : {}),
      ...(settings.subjectPrefix !== undefined ? { subjectPrefix: settings.subjectPrefix } : {}),
    };
    const store = options.migrate ? await nats.NatsEventStore.create(storeOptions) : await nats.NatsEventStore.connect(storeOptions);
    const { jetstreamManager } = await import('@nats-io/jetstream');
    const source: EventSource = {
      store,
      wakeUps: nats.natsWakeUps(store),
      nats: {
        connection: store.connection,
        kvBuckets: async () => {
          const jsm = await jetstreamManager(store.connection);
          const names: string[] = [];
          for await (const name of jsm.streams.names()) if (name.startsWith('KV_')) names.push(name.slice(3));
          return names.sort();
        },
        kvBucketInfo: async (bucket) => {
          const jsm = await jetstreamManager(store.connection);
          try {
            const { config } = await jsm.streams.info(`KV_${bucket}`);
            return { storage: String(config.storage) === 'memory' ? 'memory' : 'file', replicas: config.num_replicas };
          } catch (error) {
            if (error instanceof Error && /stream not found/i.test(error.message)) return undefined;
            throw error;
          }
        },
      },
    };
    const projections = await withAdmin(store, () =>
      projectionAdmin(options, source, () => natsKvCheckpoints(importDriver, DEFAULT_NATS_CHECKPOINT_BUCKET, source)),
    );
    return {
      kind: 'nats',
      description: `NATS ${servers.map(redactUrl).join(',')} (stream ${store.options.stream})`,
      store,
      catalog: natsCatalog({
        store,
        connection: store.connection,
        stream: store.options.stream,
        subjectPrefix: store.options.subjectPrefix,
        jetstreamManager: (connection) => jetstreamManager(connection),
        decodeStreamToken: nats.decodeStreamToken,
      }),
      projections,
      close: async () => {
        await projections.close().catch(() => undefined);
        await store.close();
      },
    };
  },
};

/** Tried in order; the SQLite entry takes any target that is not a URL, so it comes last. */
export const STORE_DRIVERS: readonly StoreDriver[] = [postgresDriver, natsDriver, sqliteDriver];

/** The target string of a `store` setting, plus the schema it names. */
export function targetOf(setting: StoreSetting): { target: string; schema: string | undefined } {
  if (typeof setting === 'string') return { target: setting, schema: undefined };
  if ('sqlite' in setting && typeof setting.sqlite === 'string') return { target: `sqlite:${setting.sqlite}`, schema: undefined };
  if ('postgres' in setting && typeof setting.postgres === 'string') return { target: setting.postgres, schema: setting.schema };
  if ('url' in setting && typeof setting.url === 'string') return { target: setting.url, schema: setting.schema };
  if ('nats' in setting && typeof setting.nats === 'string') {
    const params = new URLSearchParams();
    if (setting.stream !== undefined) params.set('stream', setting.stream);
    if (setting.subjectPrefix !== undefined) params.set('subjectPrefix', setting.subjectPrefix);
    const query = params.toString();
    return { target: query === '' ? setting.nats : `${setting.nats}${setting.nats.includes('?') ? '&' : '?'}${query}`, schema: undefined };
  }
  throw new CliUsageError(`'store' must be a path, a URL, { sqlite: path }, { postgres: url, schema? } or { url, schema? }.`);
}

export interface StoreChoice {
  readonly target: string;
  readonly schema: string | undefined;
  /** Where projection checkpoints live, when not in the store. */
  readonly checkpoints?: CheckpointSetting | undefined;
}

/** `--db` wins, then the configuration's `store`, then DATABASE_URL. */
export function chooseStore(
  flag: string | undefined,
  schemaFlag: string | undefined,
  setting: StoreSetting | undefined,
  env: NodeJS.ProcessEnv,
): StoreChoice {
  const envSchema = env['EVENTFOLD_PG_SCHEMA'] === '' ? undefined : env['EVENTFOLD_PG_SCHEMA'];
  if (flag !== undefined) return { target: flag, schema: schemaFlag ?? envSchema };
  if (setting !== undefined) {
    const { target, schema } = targetOf(setting);
    return { target, schema: schemaFlag ?? schema ?? envSchema };
  }
  const url = env['DATABASE_URL'];
  if (url !== undefined && url !== '') return { target: url, schema: schemaFlag ?? envSchema };
  throw new CliUsageError(
    `No store given: pass --db <file.db | postgres://…>, set DATABASE_URL, or set 'store' in eventfold.config.mjs.`,
  );
}

export async function openStore(choice: StoreChoice, options: Omit<OpenOptions, 'schema'>): Promise<OpenedStore> {
  if (choice.target === '') throw new CliUsageError('The store target is empty.');
  const driver = STORE_DRIVERS.find((candidate) => candidate.matches(choice.target));
  if (driver === undefined) {
    const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(choice.target)?.[1] ?? '';
    throw new CliUsageError(
      `Unknown store URL scheme '${scheme}:'. Use a SQLite file path, postgres://, postgresql:// or nats://.`,
    );
  }
  return driver.open(choice.target, { ...options, schema: choice.schema, checkpoints: choice.checkpoints });
}
