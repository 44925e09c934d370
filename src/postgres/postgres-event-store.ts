import type { Pool, PoolClient, QueryArrayConfig, QueryConfig } from 'pg';
import { expectedVersionConflict, InvalidArgumentError, StreamNotFoundError, type ConcurrencyError } from '../errors.js';
import { frozenDate } from '../events/frozen-date.js';
import type { AnyEvent, RecordedEvent } from '../events/types.js';
import type { EventLimits } from '../events/validation.js';
import {
  FULL_CAPABILITIES,
  type AppendOptions,
  type AppendResult,
  type EventStore,
  type EventStoreCapabilities,
  type ReadAllOptions,
  type ReadStreamOptions,
  type StreamAppend,
} from '../store/event-store.js';
import { PagedEventStream, type EventStream } from '../store/event-stream.js';
import type { ExpectedVersion } from '../store/expected-version.js';
import {
  prepareAppend,
  prepareAppendMany,
  recordEvents,
  resolveLimits,
  resolveLogRange,
  resolveStreamRange,
  type PreparedAppend,
  type StreamRange,
} from '../store/store-input.js';
import { PgConnection, type PostgresConnectionOptions, type PostgresSchemaOptions } from './connection.js';
import { migrateSchema } from './migrate.js';
import { AfterCommitNotifier } from './notifier.js';
import { CONFLICT_SQLSTATE } from './pg-errors.js';
import { logRowsToEvents, ROW_TYPES, STREAM_COLUMNS, streamRowsToEvents, type LogRow, type StreamRow } from './rows.js';
import { notifyChannel, quoteIdentifier } from './schema-name.js';

/**
 * Runs inside an append's transaction, on its client, after the events are inserted and before
 * COMMIT. Write your own rows with `client` (inline projections, an outbox); a throw (or a
 * rejected promise) rolls back the whole append, the hook's writes included.
 */
export type PostgresAppendHook = (events: readonly RecordedEvent[], client: PoolClient) => Promise<void>;

export type PostgresEventStoreOptions = PostgresConnectionOptions &
  PostgresSchemaOptions & {
    /** Override the default limits on events per append and bytes per event. */
    readonly limits?: Partial<EventLimits>;
    /** Events per database round trip when reading (default 1000): bounds reader memory. */
    readonly pageSize?: number;
    /**
     * How appends wake LISTENers on `eventfold_<schema>` (payload: the last position):
     * - `'after-commit'` (default): one coalesced `pg_notify` right after commits, outside them,
     *   and under sustained appends at most one per 5 ms (a listener wakes at most that much
     *   later); concurrent appends commit in parallel. A crash between commit and notify loses
     *   one wake-up, which the listeners' polling covers (a delay, never a lost event).
     * - `'in-transaction'`: `pg_notify` inside the append's transaction, delivered iff it
     *   commits. PostgreSQL makes transactions that notify commit one at a time (a cluster-wide
     *   lock held through the commit's WAL flush), which caps concurrent append throughput.
     * - `'off'`: no NOTIFY; listeners rely on polling.
     */
    readonly notify?: PostgresNotifyMode;
  };

export type PostgresNotifyMode = 'in-transaction' | 'after-commit' | 'off';

const MAX_VERSION = Number.MAX_SAFE_INTEGER;

/** Stream pages requested ahead of the one being folded (each on its own pooled connection). */
const READ_AHEAD = 2;

/** One row of `append_events` per stream, in input order. */
interface AppendRow {
  readonly stream_version: number;
  readonly first_position: number;
}

/** A prepared `append_event(s)` call and the event ids it assigns, per stream. */
interface AppendCall {
  readonly query: QueryConfig;
  readonly eventIds: string[][];
}

/** How `append_events` and `append_event` encode the non-numeric expected versions. */
function encodeExpected(expected: ExpectedVersion): number {
  switch (expected) {
    case 'any':
      return -1;
    case 'stream-exists':
      return -2;
    case 'no-stream':
      return 0;
    default:
      return expected;
  }
}

/**
 * The `EventStore` port on PostgreSQL (via `pg`). Call `migrate()` once (idempotent) before use.
 *
 * - An append is one round trip (one call of the `append_events` function, or of `append_event`
 *   for one event to one stream) unless append hooks are registered; then it is BEGIN, the call,
 *   the hooks, COMMIT on one client.
 * - Every `expectedVersion` kind is checked inside SQL under the stream's advisory lock.
 * - The global log is gap-safe: see `log_watch` in `postgresSchemaSql` for how, and what it costs.
 * - Appends wake LISTENers on `eventfold_<schema>` as the `notify` option says.
 */
export class PostgresEventStore implements EventStore {
  readonly capabilities: EventStoreCapabilities = FULL_CAPABILITIES;
  private readonly connection: PgConnection;
  private readonly limits: EventLimits;
  private readonly pageSize: number;
  private readonly hooks: PostgresAppendHook[] = [];
  private readonly sql: ReturnType<typeof statements>;
  private readonly notifyMode: PostgresNotifyMode;
  private readonly notifier: AfterCommitNotifier | undefined;

  constructor(options: PostgresEventStoreOptions) {
    this.connection = new PgConnection(options, 'PostgreSQL event store');
    this.limits = resolveLimits(options.limits);
    const pageSize = options.pageSize ?? 1000;
    if (!Number.isSafeInteger(pageSize) || pageSize < 1) {
      throw new InvalidArgumentError(`pageSize must be a positive integer, got ${String(pageSize)}.`);
    }
    this.pageSize = pageSize;
    this.sql = statements(this.connection.schema);
    const notify = options.notify ?? 'after-commit';
    if (notify !== 'in-transaction' && notify !== 'after-commit' && notify !== 'off') {
      throw new InvalidArgumentError(`notify must be 'in-transaction', 'after-commit' or 'off', got ${String(notify)}.`);
    }
    this.notifyMode = notify;
    this.notifier = notify === 'after-commit' ? new AfterCommitNotifier(this.connection.pool, this.notifyChannel) : undefined;
  }

  /** Creates the store and runs `migrate()`. */
  static async create(options: PostgresEventStoreOptions): Promise<PostgresEventStore> {
    const store = new PostgresEventStore(options);
    try {
      await store.migrate();
    } catch (error) {
      await store.close();
      throw error;
    }
    return store;
  }

  /** The pool the store uses (for read models that live in the same database). */
  get pool(): Pool {
    return this.connection.pool;
  }

  /** The schema holding the store's tables. */
  get schema(): string {
    return this.connection.schema;
  }

  /** The LISTEN channel every append notifies (payload: the append's last position). */
  get notifyChannel(): string {
    return notifyChannel(this.connection.schema);
  }

  /** Creates (or completes) the schema, tables, indexes and functions. Safe to run concurrently. */
  async migrate(): Promise<void> {
    await this.connection.transaction('migrate the event store schema', (client) => migrateSchema(client, this.schema));
  }

  /** Registers a hook that runs inside every append's transaction (see `PostgresAppendHook`). */
  addAppendHook(hook: PostgresAppendHook): () => void {
    if (typeof hook !== 'function') throw new InvalidArgumentError('addAppendHook takes a function.');
    this.hooks.push(hook);
    return () => {
      const index = this.hooks.indexOf(hook);
      if (index >= 0) this.hooks.splice(index, 1);
    };
  }

  /** Runs `fn` in a transaction on one pooled client: COMMIT when it resolves, ROLLBACK when it throws. */
  async withTransaction<T>(fn: (client: PoolClient) => Promise<T>): Promise<T> {
    if (typeof fn !== 'function') throw new InvalidArgumentError('withTransaction takes a function.');
    return this.connection.transaction('run a transaction', fn);
  }

  async append(streamId: string, events: readonly AnyEvent[], options: AppendOptions): Promise<AppendResult> {
    this.connection.assertOpen();
    const prepared = prepareAppend(streamId, events, options?.expectedVersion, this.limits);
    return (await this.commit([prepared]))[0]!;
  }

  async appendMany(appends: readonly StreamAppend[]): Promise<AppendResult[]> {
    this.connection.assertOpen();
    const prepared = prepareAppendMany(appends, this.limits);
    if (prepared.length === 0) return [];
    return this.commit(prepared);
  }

  private async commit(appends: readonly PreparedAppend[]): Promise<AppendResult[]> {
    const recordedAt = frozenDate(Date.now());
    const single = appends.length === 1 && appends[0]!.events.length === 1;
    const call = single ? this.appendOneCall(appends[0]!, recordedAt) : this.appendCall(appends, recordedAt);
    const hooks = this.hooks.slice();
    let results: AppendResult[];
    try {
      if (hooks.length === 0) {
        const { rows } = await this.connection.query<AppendRow>(call.query, 'append events', true);
        results = buildResults(appends, rows, call.eventIds, recordedAt);
      } else {
        results = await this.connection.transaction('append events', async (client) => {
          const { rows } = await client.query<AppendRow>(call.query);
          const built = buildResults(appends, rows, call.eventIds, recordedAt);
          const all: RecordedEvent[] = [];
          for (const result of built) for (const event of result.events) all.push(event);
          for (const hook of hooks) await hook(all, client);
          return built;
        });
      }
    } catch (error) {
      throw conflictFrom(error, appends) ?? error;
    }
    if (this.notifier !== undefined) {
      let last = 0;
      for (const result of results) if (result.position > last) last = result.position;
      if (last > 0) this.notifier.committed(last);
    }
    return results;
  }

  /** One event to one stream: `append_event`, scalar parameters (see its comment in ddl.ts). */
  private appendOneCall(append: PreparedAppend, recordedAt: Date): AppendCall {
    const event = append.events[0]!;
    const id = crypto.randomUUID();
    return {
      query: {
        name: this.sql.appendOneName,
        text: this.sql.appendOne,
        values: [
          append.streamId,
          encodeExpected(append.expectedVersion),
          id,
          event.type,
          event.dataJson,
          event.metadataJson,
          recordedAt.toISOString(),
          this.notifyMode === 'in-transaction',
        ],
        types: ROW_TYPES,
      },
      eventIds: [[id]],
    };
  }

  private appendCall(appends: readonly PreparedAppend[], recordedAt: Date): AppendCall {
    const streamIds: string[] = [];
    const expected: number[] = [];
    const counts: number[] = [];
    const eventStreams: number[] = [];
    const ids: string[] = [];
    const types: string[] = [];
    let data = '[';
    let metadata = '[';
    const eventIds: string[][] = [];
    for (let s = 0; s < appends.length; s++) {
      const append = appends[s]!;
      streamIds.push(append.streamId);
      expected.push(encodeExpected(append.expectedVersion));
      counts.push(append.events.length);
      const streamEventIds: string[] = [];
      for (const event of append.events) {
        const id = crypto.randomUUID();
        streamEventIds.push(id);
        ids.push(id);
        types.push(event.type);
        eventStreams.push(s + 1);
        if (data.length > 1) {
          data += ',';
          metadata += ',';
        }
        data += event.dataJson;
        metadata += event.metadataJson;
      }
      eventIds.push(streamEventIds);
    }
    return {
      query: {
        name: this.sql.appendName,
        text: this.sql.append,
        values: [
          streamIds,
          expected,
          counts,
          eventStreams,
          ids,
          types,
          data + ']',
          metadata + ']',
          recordedAt.toISOString(),
          this.notifyMode === 'in-transaction',
        ],
        types: ROW_TYPES,
      },
      eventIds,
    };
  }

  readStream(streamId: string, options?: ReadStreamOptions): EventStream<RecordedEvent> {
    const range = resolveStreamRange(streamId, options);
    return new PagedEventStream(() => this.streamPages(streamId, range));
  }

  private async *streamPages(streamId: string, range: StreamRange): AsyncGenerator<readonly RecordedEvent[]> {
    this.connection.assertOpen();
    let low = range.low;
    let high = Math.min(range.high, MAX_VERSION);
    if (range.backwards && range.limit > 0) {
      // Backwards pages count down from the stream's end, so learn where it is first.
      const version = await this.currentVersion(streamId);
      if (version === 0) throw new StreamNotFoundError(streamId);
      high = Math.min(high, version);
    }
    // Versions are contiguous, so each page is an exact version range, known in advance: the
    // next pages are read while the caller folds this one, and each query reads only its page
    // whatever plan the server picks.
    let unrequested = high < low ? 0 : Math.min(range.limit, high - low + 1);
    const text = range.backwards ? this.sql.readStreamBackwards : this.sql.readStream;
    const requestNext = (): { size: number; rows: Promise<RecordedEvent[]> } | undefined => {
      if (unrequested === 0) return undefined;
      const size = Math.min(this.pageSize, unrequested);
      unrequested -= size;
      const from = range.backwards ? high - size + 1 : low;
      const to = range.backwards ? high : low + size - 1;
      if (range.backwards) high -= size;
      else low += size;
      const rows = this.readRows<StreamRow>(text, [streamId, from, to], 'read a stream').then((r) => streamRowsToEvents(streamId, r));
      return { size, rows: settleQuietly(rows) };
    };
    const ahead: { size: number; rows: Promise<RecordedEvent[]> }[] = [];
    for (let i = 0; i < READ_AHEAD; i++) {
      const request = requestNext();
      if (request !== undefined) ahead.push(request);
    }
    let first = true;
    for (;;) {
      const request = ahead.shift();
      const page = request === undefined ? [] : await request.rows;
      if (first && page.length === 0) {
        if (!(await this.streamExists(streamId))) throw new StreamNotFoundError(streamId);
        return;
      }
      first = false;
      const done = request === undefined || page.length < request.size;
      if (!done) {
        const next = requestNext();
        if (next !== undefined) ahead.push(next);
      }
      if (page.length > 0) yield page;
      if (done) return;
    }
  }

  readAll(options?: ReadAllOptions): EventStream<RecordedEvent> {
    const range = resolveLogRange(options);
    return new PagedEventStream(() => this.logPages(range.fromPosition, range.limit));
  }

  private async *logPages(fromPosition: number, limit: number): AsyncGenerator<readonly RecordedEvent[]> {
    this.connection.assertOpen();
    let remaining = limit;
    let from = fromPosition;
    const fetch = (): Promise<RecordedEvent[]> =>
      this.readRows<LogRow>(this.sql.readAll, [from, Math.min(this.pageSize, remaining)], 'read the event log').then(logRowsToEvents);
    if (remaining === 0) return;
    let next = fetch();
    for (;;) {
      const page = await next;
      const requested = Math.min(this.pageSize, remaining);
      remaining -= page.length;
      // A short page is the end of what is visible now; a later read continues from there.
      const done = page.length < requested || remaining === 0;
      if (!done) {
        from = page[page.length - 1]!.position + 1;
        next = settleQuietly(fetch());
      }
      if (page.length > 0) yield page;
      if (done) return;
    }
  }

  private async readRows<R extends unknown[]>(text: string, values: unknown[], action: string): Promise<R[]> {
    const config: QueryArrayConfig = { text, values, rowMode: 'array', types: ROW_TYPES };
    return (await this.connection.query<R>(config, action)).rows;
  }

  private async streamExists(streamId: string): Promise<boolean> {
    return (await this.currentVersion(streamId)) > 0;
  }

  private async currentVersion(streamId: string): Promise<number> {
    const result = await this.connection.query<{ version: number }>(
      { text: this.sql.streamVersion, values: [streamId], types: ROW_TYPES },
      'read a stream version',
    );
    return result.rows[0]?.version ?? 0;
  }

  async streamVersion(streamId: string): Promise<number> {
    this.connection.assertOpen();
    resolveStreamRange(streamId, undefined);
    return this.currentVersion(streamId);
  }

  async headPosition(): Promise<number> {
    const result = await this.connection.query<{ head: number }>({ text: this.sql.headPosition, types: ROW_TYPES }, 'read the head position');
    return result.rows[0]?.head ?? 0;
  }

  /** Ends the pool the store created from a connection string; a pool passed in stays open. */
  async close(): Promise<void> {
    if (this.notifier !== undefined && !this.connection.isClosed) await this.notifier.flush();
    await this.connection.close();
  }
}

function statements(schema: string) {
  const s = quoteIdentifier(schema);
  return {
    // Prepared-statement names: at most 63 bytes (the server truncates longer ones, and two
    // schemas' names could then collide on one connection), so 6 + at most 53.
    appendName: `ef_am_${schema}`,
    append: `SELECT stream_version, first_position FROM ${s}.append_events($1::text[], $2::bigint[], $3::integer[], $4::integer[], $5::uuid[], $6::text[], $7::json, $8::json, $9::timestamptz, $10::boolean)`,
    appendOneName: `ef_a1_${schema}`,
    appendOne: `SELECT stream_version, first_position FROM ${s}.append_event($1::text, $2::bigint, $3::uuid, $4::text, $5::json, $6::json, $7::timestamptz, $8::boolean)`,
    readStream: `SELECT ${STREAM_COLUMNS} FROM ${s}.events WHERE stream_id = $1 AND version BETWEEN $2 AND $3 ORDER BY version`,
    readStreamBackwards:
      `SELECT ${STREAM_COLUMNS} FROM ${s}.events WHERE stream_id = $1 AND version BETWEEN $2 AND $3 ORDER BY version DESC`,
    readAll: `SELECT * FROM ${s}.read_log($1, $2)`,
    streamVersion: `SELECT version FROM ${s}.streams WHERE stream_id = $1`,
    headPosition: `SELECT ${s}.log_head() AS head`,
  };
}

function buildResults(
  appends: readonly PreparedAppend[],
  rows: readonly AppendRow[],
  eventIds: readonly string[][],
  recordedAt: Date,
): AppendResult[] {
  return appends.map((append, index) => {
    const row = rows[index]!;
    const count = append.events.length;
    const events = Object.freeze(
      recordEvents(append, row.stream_version - count + 1, (i) => row.first_position + i, recordedAt, eventIds[index]),
    );
    return {
      streamId: append.streamId,
      version: row.stream_version,
      position: count === 0 ? 0 : row.first_position + count - 1,
      events,
    };
  });
}

/** Turns `append_events`' EF001 error (DETAIL '<stream index>:<actual>') into a ConcurrencyError. */
function conflictFrom(error: unknown, appends: readonly PreparedAppend[]): ConcurrencyError | undefined {
  const pgError = error as { code?: unknown; detail?: unknown };
  if (pgError?.code !== CONFLICT_SQLSTATE || typeof pgError.detail !== 'string') return undefined;
  const [index, actual] = pgError.detail.split(':').map(Number);
  const append = appends[(index ?? 0) - 1];
  if (append === undefined || actual === undefined || !Number.isSafeInteger(actual)) return undefined;
  return expectedVersionConflict(append.streamId, append.expectedVersion, actual);
}

/** A prefetched page nobody awaits (the reader stopped early) must not become an unhandled rejection. */
function settleQuietly<T>(promise: Promise<T>): Promise<T> {
  promise.catch(() => {});
  return promise;
}
