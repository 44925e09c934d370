import type { Pool, PoolClient, QueryArrayConfig } from 'pg';
import { InvalidArgumentError, StreamNotFoundError } from '../errors.js';
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
import type { ResolvedReadAllFilter } from '../store/read-filter.js';
import { GroupCommitter, resolveGroupCommit, type GroupCommitSetting, type GroupCommitStats, type GroupMember } from '../store/group-commit.js';
import { StreamCallOrder } from '../store/stream-order.js';
import {
  prepareAppend,
  prepareAppendMany,
  resolveLimits,
  resolveLogRange,
  resolveStreamRange,
  type PreparedAppend,
  type StreamRange,
} from '../store/store-input.js';
import { PgConnection, type PostgresConnectionOptions, type PostgresSchemaOptions } from './connection.js';
import { migrateSchema } from './migrate.js';
import { AfterCommitNotifier } from './notifier.js';
import { PostgresAppendWriter, type PostgresAppendHook } from './postgres-append-writer.js';
import { logRowsToEvents, ROW_TYPES, STREAM_COLUMNS, streamRowsToEvents, type LogRow, type StreamRow } from './rows.js';
import { notifyChannel, quoteIdentifier } from './schema-name.js';

export type { PostgresAppendHook } from './postgres-append-writer.js';

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
     *   one wake-up, which the listeners' polling covers (a delay, never a lost event). A failed
     *   NOTIFY is reported to `logger` and retried with backoff (8 attempts, ~2.5 s of waits), then dropped
     *   (reported as an error): listeners then catch up at their next poll.
     * - `'in-transaction'`: `pg_notify` inside the append's transaction, delivered iff it
     *   commits. PostgreSQL makes transactions that notify commit one at a time (a cluster-wide
     *   lock held through the commit's WAL flush), which caps concurrent append throughput.
     * - `'off'`: no NOTIFY; listeners rely on polling.
     */
    readonly notify?: PostgresNotifyMode;
    /**
     * Group commit (default on): appends that arrive while another append is committing are written
     * together in one transaction and one round trip, each with its own checks and outcome. See
     * `GroupCommitSetting` and docs/performance.md.
     */
    readonly groupCommit?: GroupCommitSetting;
  };

export type PostgresNotifyMode = 'in-transaction' | 'after-commit' | 'off';

const MAX_VERSION = Number.MAX_SAFE_INTEGER;

/** @internal Group commits under way at once, each on its own pooled connection. */
export const GROUPS_IN_FLIGHT = 4;

/** Stream pages requested ahead of the one being folded (each on its own pooled connection). */
const READ_AHEAD = 2;

/**
 * The `EventStore` port on PostgreSQL (via `pg`). Call `migrate()` once (idempotent) before use.
 *
 * - An append is one round trip (one call of the `append_events` function, or of `append_event`
 *   for one event to one stream) unless append hooks are registered; then it is BEGIN, the call,
 *   the hooks, COMMIT on one client. With group commit (default), appends that arrive while others
 *   commit share one `append_group` call and transaction (see `PostgresAppendWriter`).
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
  private readonly notifier: AfterCommitNotifier | undefined;
  private readonly writer: PostgresAppendWriter;
  private readonly committer: GroupCommitter<GroupMember, AppendResult[]> | undefined;
  /** Group commit off: appends to one stream still reach the server in call order. */
  private readonly callOrder = new StreamCallOrder();

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
    const groupCommit = resolveGroupCommit(options.groupCommit);
    this.notifier = notify === 'after-commit' ? new AfterCommitNotifier(this.connection.pool, this.notifyChannel, this.connection.logger) : undefined;
    this.writer = new PostgresAppendWriter(this.connection, this.hooks, notify === 'in-transaction', this.notifier);
    // Up to GROUPS_IN_FLIGHT groups commit at once, each on its own connection; appends arriving
    // meanwhile wait for the next free slot and go together.
    this.committer =
      groupCommit === undefined
        ? undefined
        : new GroupCommitter(groupCommit, 'now', GROUPS_IN_FLIGHT, (members) => this.writer.commitGroup(members));
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

  /** How group commit has batched appends so far; `undefined` when it is switched off. */
  get groupCommitStats(): GroupCommitStats | undefined {
    return this.committer?.stats;
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

  private commit(appends: readonly PreparedAppend[]): Promise<AppendResult[]> {
    if (this.committer !== undefined) return this.committer.submit({ appends });
    return this.callOrder.run(
      appends.map((a) => a.streamId),
      () => this.writer.commitOne(appends),
    );
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
    return new PagedEventStream(() => this.logPages(range.fromPosition, range.limit, range.filter));
  }

  private async *logPages(fromPosition: number, limit: number, filter: ResolvedReadAllFilter | undefined): AsyncGenerator<readonly RecordedEvent[]> {
    this.connection.assertOpen();
    let remaining = limit;
    let from = fromPosition;
    const fetch = (): Promise<RecordedEvent[]> =>
      (filter === undefined
        ? this.readRows<LogRow>(this.sql.readAll, [from, Math.min(this.pageSize, remaining)], 'read the event log')
        : this.readRows<LogRow>(
            this.sql.readAllFiltered,
            [from, Math.min(this.pageSize, remaining), filter.types ?? null, filter.categories ?? null],
            'read the event log (filtered)',
          )
      ).then(logRowsToEvents);
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
    // Appends already accepted are committed (or fail) before the pool ends.
    if (this.committer !== undefined && !this.connection.isClosed) await this.committer.drain();
    if (!this.connection.isClosed) await this.callOrder.drain();
    if (this.notifier !== undefined && !this.connection.isClosed) await this.notifier.close();
    await this.connection.close();
  }
}

function statements(schema: string) {
  const s = quoteIdentifier(schema);
  return {
    readStream: `SELECT ${STREAM_COLUMNS} FROM ${s}.events WHERE stream_id = $1 AND version BETWEEN $2 AND $3 ORDER BY version`,
    readStreamBackwards:
      `SELECT ${STREAM_COLUMNS} FROM ${s}.events WHERE stream_id = $1 AND version BETWEEN $2 AND $3 ORDER BY version DESC`,
    readAll: `SELECT * FROM ${s}.read_log($1, $2)`,
    readAllFiltered: `SELECT * FROM ${s}.read_log_filtered($1, $2, $3::text[], $4::text[])`,
    streamVersion: `SELECT max(version) AS version FROM ${s}.events WHERE stream_id = $1`,
    headPosition: `SELECT ${s}.log_head() AS head`,
  };
}

/** A prefetched page nobody awaits (the reader stopped early) must not become an unhandled rejection. */
function settleQuietly<T>(promise: Promise<T>): Promise<T> {
  promise.catch(() => {});
  return promise;
}
