import { existsSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import type { NatsConnection } from '@nats-io/transport-node';
import type { AnyEvent } from '../events/types.js';
import type { DeadLetterStore } from '../projections/dead-letters.js';
import type { Projection } from '../projections/projection.js';
import { AtLeastOnceTarget } from '../projections/at-least-once-target.js';
import { ProjectionRunner, type ProjectionRunnerSettings } from '../projections/runner.js';
import type { StoredRunnerError } from '../projections/runner-error.js';
import type { ProjectionLock, ProjectionTarget, WakeUpSource } from '../projections/target.js';
import type { CheckpointSummary } from '../store/catalog.js';
import type { EventStore } from '../store/event-store.js';
import { CliUsageError } from './errors.js';

/** The projection bookkeeping the CLI reads and acts on: checkpoints, runner locks, errors, dead letters. */
export interface ProjectionAdmin {
  /** Where the checkpoints live, for people (no password). */
  readonly description: string;
  /** False where a runner may hold a lock the CLI cannot see (NATS KV: only `NatsProjectionLock` leases show): state is then unknown unless a lease or an error says more. */
  readonly locksVisible: boolean;
  /** Creates the checkpoint tables (migrate), so `status` works before any runner started. */
  prepare(): Promise<void>;
  listCheckpoints(): Promise<CheckpointSummary[]>;
  /** The runners' last faults (retried or final), by projection. */
  listErrors(): Promise<Map<string, StoredRunnerError>>;
  /** Who runs the projection now, if anyone (a lock holder). */
  lockHolder(projection: string): Promise<string | undefined>;
  /** Parked events; undefined when there is no dead-letter table (nothing was ever parked, or the location keeps none). */
  deadLetters(): Promise<DeadLetterStore | undefined>;
  target(): ProjectionTarget<unknown>;
  lock(): ProjectionLock;
  createRunner(projection: Projection<AnyEvent, unknown>, settings: ProjectionRunnerSettings): ProjectionRunner<AnyEvent, unknown>;
  /** Other places checkpoints may be, for a status that found none (NATS: KV buckets named like checkpoints). */
  elsewhere?(): Promise<string[]>;
  close(): Promise<void>;
}

/** Where checkpoints live when they are not in the event store: `--checkpoints`, or `checkpoints` in the config file. */
export type CheckpointSetting =
  | string
  | { readonly sqlite: string }
  | { readonly postgres: string; readonly schema?: string }
  | { readonly natsKv: string };

/** The event log the runners of a location read, and what wakes them. */
export interface EventSource {
  readonly store: EventStore;
  readonly wakeUps: WakeUpSource | undefined;
  /** Set for a NATS store: KV buckets are on its connection. */
  readonly nats?: {
    readonly connection: NatsConnection;
    /** Every KV bucket's name. */
    readonly kvBuckets: () => Promise<string[]>;
    /** The bucket's storage and replicas (to open it as it is), or undefined when it does not exist. */
    readonly kvBucketInfo: (bucket: string) => Promise<{ readonly storage: 'file' | 'memory'; readonly replicas: number } | undefined>;
  };
}

export type DriverImporter = <M>(load: () => Promise<M>, packageNames: string | readonly string[], what: string) => Promise<M>;

type Location =
  | { readonly kind: 'sqlite'; readonly path: string; readonly given: string }
  | { readonly kind: 'postgres'; readonly url: string; readonly schema: string | undefined }
  | { readonly kind: 'nats-kv'; readonly bucket: string };

/** Parses a checkpoint setting: a SQLite path (or `sqlite:<path>`), `postgres://…[?schema=<name>]`, or `nats-kv:<bucket>`. */
export function parseCheckpointSetting(setting: CheckpointSetting, cwd: string): Location {
  const absolute = (given: string): string => (given === ':memory:' || isAbsolute(given) ? given : resolve(cwd, given));
  if (typeof setting === 'object' && setting !== null) {
    if ('sqlite' in setting && typeof setting.sqlite === 'string') return { kind: 'sqlite', path: absolute(setting.sqlite), given: setting.sqlite };
    if ('postgres' in setting && typeof setting.postgres === 'string') return { kind: 'postgres', url: setting.postgres, schema: setting.schema };
    if ('natsKv' in setting && typeof setting.natsKv === 'string') return { kind: 'nats-kv', bucket: setting.natsKv };
  }
  if (typeof setting !== 'string' || setting === '') {
    throw new CliUsageError(`'checkpoints' must be a SQLite path, a postgres:// URL, nats-kv:<bucket>, { sqlite }, { postgres, schema? } or { natsKv }.`);
  }
  if (/^nats-kv:/i.test(setting)) return { kind: 'nats-kv', bucket: setting.slice('nats-kv:'.length) };
  if (/^postgres(ql)?:\/\//i.test(setting)) {
    let url: URL;
    try {
      url = new URL(setting);
    } catch {
      throw new CliUsageError('The --checkpoints PostgreSQL URL is not valid.');
    }
    const schema = url.searchParams.get('schema') ?? undefined;
    url.searchParams.delete('schema');
    return { kind: 'postgres', url: url.toString(), schema };
  }
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(setting)) {
    throw new CliUsageError(`--checkpoints takes a SQLite file path, a postgres:// URL or nats-kv:<bucket>.`);
  }
  const given = setting.replace(/^sqlite:/i, '');
  return { kind: 'sqlite', path: absolute(given), given };
}

/** A URL with the password hidden. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password !== '') parsed.password = '***';
    return parsed.toString();
  } catch {
    return '(an unparsable URL)';
  }
}

function runner(
  source: EventSource,
  target: ProjectionTarget<unknown>,
  lock: ProjectionLock,
  projection: Projection<AnyEvent, unknown>,
  settings: ProjectionRunnerSettings,
): ProjectionRunner<AnyEvent, unknown> {
  return new ProjectionRunner({
    ...settings,
    store: source.store,
    projection,
    target,
    lock,
    ...(source.wakeUps === undefined ? {} : { wakeUps: source.wakeUps }),
  });
}

/** Checkpoints in a SQLite file (the event store's own, or a read model's file beside another store). */
export async function sqliteCheckpoints(
  importDriver: DriverImporter,
  path: string,
  description: string,
  events: EventSource,
  /** The event store's own file, when the checkpoints are there (not closed with the admin). */
  existing?: import('../sqlite/index.js').SqliteEventStore,
): Promise<ProjectionAdmin> {
  const sqlite = await importDriver(() => import('../sqlite/index.js'), 'better-sqlite3', 'SQLite checkpoints');
  const db = existing ?? new sqlite.SqliteEventStore({ path });
  const catalog = new sqlite.SqliteCatalog(db);
  return {
    description,
    locksVisible: true,
    prepare: () => new sqlite.SqliteProjectionTarget(db).prepare(),
    listCheckpoints: () => catalog.listCheckpoints(),
    listErrors: () => catalog.listErrors(),
    lockHolder: (name) => catalog.lockHolder(name),
    deadLetters: () => catalog.deadLetters(),
    target: () => new sqlite.SqliteProjectionTarget(db) as ProjectionTarget<unknown>,
    lock: () => new sqlite.SqliteProjectionLock(db.database),
    createRunner: (projection, settings) =>
      runner(events, new sqlite.SqliteProjectionTarget(db) as ProjectionTarget<unknown>, new sqlite.SqliteProjectionLock(db.database), projection, settings),
    close: async () => {
      if (existing === undefined) await db.close();
    },
  };
}

/** Checkpoints in a PostgreSQL schema (the event store's own, or a read model's beside another store). */
export async function postgresCheckpoints(
  importDriver: DriverImporter,
  store: import('../postgres/index.js').PostgresEventStore,
  description: string,
  source: EventSource,
  owned: boolean,
): Promise<ProjectionAdmin> {
  const postgres = await importDriver(() => import('../postgres/index.js'), 'pg', 'PostgreSQL checkpoints');
  const catalog = new postgres.PostgresCatalog(store);
  const target = (): ProjectionTarget<unknown> => new postgres.PostgresProjectionTarget(store) as unknown as ProjectionTarget<unknown>;
  const lock = (): ProjectionLock => new postgres.PostgresProjectionLock(store.pool, store.schema);
  return {
    description,
    locksVisible: true,
    prepare: () => target().prepare(),
    listCheckpoints: () => catalog.listCheckpoints(),
    listErrors: () => catalog.listErrors(),
    lockHolder: (name) => catalog.lockHolder(name),
    deadLetters: () => catalog.deadLetters(),
    target,
    lock,
    createRunner: (projection, settings) => runner(source, target(), lock(), projection, settings),
    close: async () => {
      if (owned) await store.close();
    },
  };
}

/**
 * Checkpoints in a JetStream KV bucket (`NatsCheckpointStore`), with the runners' leases
 * (`NatsProjectionLock`) and parked events (`NatsDeadLetterStore`) in the same bucket. Their read models live outside any database the CLI
 * can open (an `AtLeastOnceTarget`): rebuild and reset run the projection's hooks with no context
 * (the module reaches its read model itself), under the lease, so they are refused while a runner
 * holding it runs. A runner with another lock is invisible here: status says `unknown`.
 */
export async function natsKvCheckpoints(importDriver: DriverImporter, bucket: string, source: EventSource): Promise<ProjectionAdmin> {
  const nats = await importDriver(() => import('../nats/index.js'), ['@nats-io/transport-node', '@nats-io/jetstream'], 'NATS KV checkpoints');
  if (source.nats === undefined) throw new CliUsageError(`nats-kv:${bucket} checkpoints need a NATS store (--db nats://…).`);
  if (!/^[A-Za-z0-9_-]{1,64}$/.test(bucket)) throw new CliUsageError(`'${bucket}' is not a KV bucket name (letters, digits, '_' and '-').`);
  const connection = source.nats.connection;
  const info = await source.nats.kvBucketInfo(bucket);
  const exists = info !== undefined;
  // Reading never creates the bucket; rebuild and reset do (as the runners would), as it is when it exists.
  const store = info === undefined ? undefined : new nats.NatsCheckpointStore({ connection, bucket, ...info });
  const writable = store ?? new nats.NatsCheckpointStore({ connection, bucket });
  const leases = new nats.NatsProjectionLock({ connection, bucket, ...(info ?? {}) });
  const parked = new nats.NatsDeadLetterStore({ connection, bucket, ...(info ?? {}) });
  // With the dead letters, so a rebuild clears them (their events are replayed) as on SQL stores.
  const target = (): ProjectionTarget<unknown> => new AtLeastOnceTarget<unknown>({ checkpoints: writable, context: () => undefined, deadLetters: parked });
  return {
    description: `NATS KV bucket ${bucket}${exists ? '' : ' (does not exist yet)'}`,
    locksVisible: false,
    // The runner's NatsCheckpointStore creates the bucket with the replicas and storage it is given.
    prepare: async () => undefined,
    listCheckpoints: async () => ((await store?.list()) ?? []).map((c) => ({ projection: c.projection, position: c.position, version: c.version, updatedAt: c.updatedAt })),
    listErrors: async () => (await store?.listErrors()) ?? new Map(),
    lockHolder: async (name) => {
      if (!exists) return undefined;
      const lease = await leases.inspect(name);
      return lease !== undefined && lease.expiresAt.getTime() + leases.maxClockSkewMs >= Date.now() ? lease.owner : undefined;
    },
    deadLetters: async () => (exists ? parked : undefined),
    elsewhere: async () => (await source.nats!.kvBuckets()).filter((name) => name !== bucket && /checkpoint/i.test(name)).map((name) => `nats-kv:${name}`),
    target,
    lock: () => leases,
    createRunner: (projection, settings) => runner(source, target(), leases, projection, settings),
    close: async () => {
      await writable.close();
    },
  };
}

/** Opens `--checkpoints` / the config's `checkpoints` for a store whose runners read `source`. */
export async function openCheckpointLocation(
  importDriver: DriverImporter,
  setting: CheckpointSetting,
  cwd: string,
  source: EventSource,
): Promise<ProjectionAdmin> {
  const location = parseCheckpointSetting(setting, cwd);
  if (location.kind === 'nats-kv') return natsKvCheckpoints(importDriver, location.bucket, source);
  if (location.kind === 'sqlite') {
    if (location.path !== ':memory:' && !existsSync(location.path)) {
      throw new CliUsageError(`There is no SQLite file at '${location.given}' (--checkpoints): point it at the read model's file, where the runners keep their checkpoints.`);
    }
    return sqliteCheckpoints(importDriver, location.path, `SQLite ${location.given}`, source);
  }
  const postgres = await importDriver(() => import('../postgres/index.js'), 'pg', 'PostgreSQL checkpoints');
  const schema = location.schema ?? postgres.DEFAULT_POSTGRES_SCHEMA;
  const store = new postgres.PostgresEventStore({
    connectionString: location.url,
    schema,
    notify: 'off',
    poolConfig: { max: 4, connectionTimeoutMillis: 10_000, application_name: 'eventfold-cli' },
  });
  return postgresCheckpoints(importDriver, store, `PostgreSQL ${redactUrl(location.url)} (schema ${schema})`, source, true);
}
