import type BetterSqlite3 from 'better-sqlite3';
import { InvalidArgumentError, StoreClosedError, StreamNotFoundError } from '../errors.js';
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
import {
  GroupCommitter,
  resolveGroupCommit,
  type GroupCommitSetting,
  type GroupCommitStats,
  type GroupMember,
  type GroupOutcome,
} from '../store/group-commit.js';
import {
  prepareAppend,
  prepareAppendMany,
  resolveLimits,
  resolveLogRange,
  resolveStreamRange,
  type PreparedAppend,
  type StreamRange,
} from '../store/store-input.js';
import {
  openConnection,
  translateSqliteError,
  type SqliteConnectionOptions,
  type SqliteTuningOptions,
} from './connection.js';
import { EVENT_MIGRATIONS, EVENTS_COMPONENT } from './event-schema.js';
import { RowDecoder, type LeanStreamRow, type LogRow, type StreamRow } from './rows.js';
import { migrateSchema } from './schema.js';
import { SqliteAppendWriter, type SqliteAppendHook } from './sqlite-append-writer.js';

export type { SqliteAppendHook } from './sqlite-append-writer.js';

/** Called after an append committed, with the position of its last event (in this process only). */
export type SqliteAppendedListener = (lastPosition: number) => void;

export type SqliteEventStoreOptions = SqliteConnectionOptions &
  SqliteTuningOptions & {
    /** Limits on events per append and bytes per event (defaults: `DEFAULT_EVENT_LIMITS`). */
    readonly limits?: Partial<EventLimits>;
    /** Events fetched per database round trip when reading (and per `pages()` page). Default 1000. */
    readonly pageSize?: number;
    /**
     * Group commit (default on): appends made by concurrent callers at the same moment are written
     * in one transaction (one fsync), each in its own savepoint. See
     * `GroupCommitSetting` and docs/performance.md.
     */
    readonly groupCommit?: GroupCommitSetting;
  };

export const DEFAULT_SQLITE_PAGE_SIZE = 1000;
const MAX_VERSION = Number.MAX_SAFE_INTEGER;
const WHAT = 'SqliteEventStore';

/**
 * The event store on SQLite (better-sqlite3). Embedded, durable (WAL, `synchronous=FULL` by
 * default) and safe to share between processes: every append runs in a `BEGIN IMMEDIATE`
 * transaction, which takes the database's single write lock before the version check, so checks and
 * inserts of different connections and processes never interleave. With group commit (default),
 * appends of concurrent callers share one transaction, a savepoint each.
 *
 * Positions: `position` is the table's INTEGER PRIMARY KEY, assigned as last position + 1 while the
 * write lock is held. SQLite has exactly one writer at a time, so commit order is append order and
 * positions grow in commit order: a `readAll` reader never finds a new event below one it has seen.
 */
export class SqliteEventStore implements EventStore {
  readonly capabilities: EventStoreCapabilities = FULL_CAPABILITIES;
  private readonly db: BetterSqlite3.Database;
  private readonly ownsDatabase: boolean;
  private readonly limits: EventLimits;
  private readonly pageSize: number;
  private readonly hooks: SqliteAppendHook[] = [];
  private readonly listeners = new Set<SqliteAppendedListener>();
  private closed = false;

  private readonly writer: SqliteAppendWriter;
  private readonly committer: GroupCommitter<GroupMember, AppendResult[]> | undefined;
  private readonly readForward: BetterSqlite3.Statement<[string, number, number, number], StreamRow>;
  private readonly readForwardLean: BetterSqlite3.Statement<[string, number, number, number], LeanStreamRow>;
  private readonly versionAt: BetterSqlite3.Statement<[number], number>;
  private readonly readBackward: BetterSqlite3.Statement<[string, number, number, number], StreamRow>;
  private readonly readLog: BetterSqlite3.Statement<[number, number], LogRow>;
  private readonly filteredReads = new Map<string, BetterSqlite3.Statement<unknown[], LogRow>>();

  constructor(options: SqliteEventStoreOptions) {
    const pageSize = options?.pageSize ?? DEFAULT_SQLITE_PAGE_SIZE;
    if (!Number.isSafeInteger(pageSize) || pageSize < 1) {
      throw new InvalidArgumentError(`SqliteEventStore: pageSize must be a positive integer, got ${String(pageSize)}.`);
    }
    this.pageSize = pageSize;
    this.limits = resolveLimits(options?.limits);
    const groupCommit = resolveGroupCommit(options?.groupCommit);
    const { db, owned } = openConnection(options, WHAT);
    this.db = db;
    this.ownsDatabase = owned;
    try {
      migrateSchema(db, EVENTS_COMPONENT, EVENT_MIGRATIONS);
      this.writer = new SqliteAppendWriter(db, this.hooks, WHAT);
      const streamColumns = 'position, version, type, data, metadata, event_id, recorded_at';
      this.readForward = db
        .prepare<[string, number, number, number], StreamRow>(
          `SELECT ${streamColumns} FROM eventfold_events
           WHERE stream_id = ? AND version BETWEEN ? AND ? ORDER BY version ASC LIMIT ?`,
        )
        .raw();
      this.readForwardLean = db
        .prepare<[string, number, number, number], LeanStreamRow>(
          `SELECT position, type, data, metadata, event_id, recorded_at FROM eventfold_events
           WHERE stream_id = ? AND version BETWEEN ? AND ? ORDER BY version ASC LIMIT ?`,
        )
        .raw();
      this.versionAt = db.prepare<[number], number>('SELECT version FROM eventfold_events WHERE position = ?').pluck();
      this.readBackward = db
        .prepare<[string, number, number, number], StreamRow>(
          `SELECT ${streamColumns} FROM eventfold_events
           WHERE stream_id = ? AND version BETWEEN ? AND ? ORDER BY version DESC LIMIT ?`,
        )
        .raw();
      this.readLog = db
        .prepare<[number, number], LogRow>(
          `SELECT position, stream_id, version, type, data, metadata, event_id, recorded_at
           FROM eventfold_events WHERE position >= ? ORDER BY position ASC LIMIT ?`,
        )
        .raw();
    } catch (error) {
      if (owned) db.close();
      throw translateSqliteError(error, WHAT);
    }
    // better-sqlite3 is synchronous: callers that append while the event loop runs the others'
    // continuations are gathered and committed together (one transaction, one fsync).
    this.committer =
      groupCommit === undefined
        ? undefined
        : new GroupCommitter(groupCommit, 'soon', 1, (members) => this.commitGroup(members));
  }

  /** The connection the store writes through (for read models and checkpoints in the same file). */
  get database(): BetterSqlite3.Database {
    this.assertOpen();
    return this.db;
  }

  /** How group commit has batched appends so far; `undefined` when it is switched off. */
  get groupCommitStats(): GroupCommitStats | undefined {
    return this.committer?.stats;
  }

  /**
   * Runs `fn` in a write transaction (BEGIN IMMEDIATE) on the store's connection, serialised with
   * appends from every connection and process. `fn` must be synchronous; a throw rolls back.
   */
  transaction<T>(fn: (db: BetterSqlite3.Database) => T): T {
    this.assertOpen();
    try {
      return this.db.transaction(() => fn(this.db)).immediate();
    } catch (error) {
      throw translateSqliteError(error, WHAT);
    }
  }

  /** Registers a hook that runs inside every append (see `SqliteAppendHook`). Returns a remover. */
  addAppendHook(hook: SqliteAppendHook): () => void {
    if (typeof hook !== 'function') throw new InvalidArgumentError('addAppendHook takes a function.');
    this.hooks.push(hook);
    return () => {
      const index = this.hooks.indexOf(hook);
      if (index >= 0) this.hooks.splice(index, 1);
    };
  }

  /**
   * Calls `listener` after each append through this store instance commits events, with the last
   * position written. Appends by other processes are not seen: poll `headPosition()` for those.
   * Returns a remover.
   */
  onAppended(listener: SqliteAppendedListener): () => void {
    if (typeof listener !== 'function') throw new InvalidArgumentError('onAppended takes a function.');
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
    };
  }

  async append(streamId: string, events: readonly AnyEvent[], options: AppendOptions): Promise<AppendResult> {
    this.assertOpen();
    const prepared = prepareAppend(streamId, events, options?.expectedVersion, this.limits);
    return (await this.commit([prepared]))[0]!;
  }

  async appendMany(appends: readonly StreamAppend[]): Promise<AppendResult[]> {
    this.assertOpen();
    return this.commit(prepareAppendMany(appends, this.limits));
  }

  private commit(appends: readonly PreparedAppend[]): AppendResult[] | Promise<AppendResult[]> {
    if (this.committer !== undefined && appends.length > 0) return this.committer.submit({ appends });
    const results = this.writer.commitOne(appends);
    if (this.listeners.size > 0) this.notify(results);
    return results;
  }

  private commitGroup(members: readonly GroupMember[]): GroupOutcome<AppendResult[]>[] {
    if (this.closed || !this.db.open) throw new StoreClosedError('SQLite event store');
    const outcomes = this.writer.commitGroup(members);
    if (this.listeners.size > 0) {
      const results: AppendResult[] = [];
      for (const outcome of outcomes) if (outcome.ok) results.push(...outcome.value);
      this.notify(results);
    }
    return outcomes;
  }

  private notify(results: readonly AppendResult[]): void {
    let last = 0;
    for (const result of results) if (result.position > last) last = result.position;
    if (last === 0) return;
    for (const listener of [...this.listeners]) {
      try {
        listener(last);
      } catch (error) {
        // The append is committed; a failing listener must not make it look failed.
        process.emitWarning(`eventfold: an onAppended listener threw: ${String(error)}`, 'EventfoldWarning');
      }
    }
  }

  readStream(streamId: string, options?: ReadStreamOptions): EventStream<RecordedEvent> {
    const range = resolveStreamRange(streamId, options);
    return new PagedEventStream(() => this.streamPages(streamId, range));
  }

  private async *streamPages(streamId: string, range: StreamRange): AsyncGenerator<readonly RecordedEvent[]> {
    let low = range.low;
    let high = Math.min(range.high, MAX_VERSION);
    let remaining = range.limit;
    let first = true;
    for (;;) {
      this.assertOpen();
      const take = Math.min(this.pageSize, remaining);
      const page =
        take === 0 || low > high
          ? []
          : this.query(() =>
              range.backwards ? this.readBackwardPage(streamId, low, high, take) : this.readForwardPage(streamId, low, high, take),
            );
      if (page.length === 0) {
        // Only an empty first page costs the extra query that tells "no events here" from "no stream".
        if (first && this.query(() => this.writer.streamVersion(streamId)) === undefined) {
          throw new StreamNotFoundError(streamId);
        }
        return;
      }
      first = false;
      remaining -= page.length;
      const lastVersion = page[page.length - 1]!.version;
      if (range.backwards) high = lastVersion - 1;
      else low = lastVersion + 1;
      yield page;
      if (page.length < take) return;
    }
  }

  /**
   * Forward pages skip the version column (a measurable share of rehydration time): versions are
   * contiguous, so the rows are versions low, low+1, …. One rowid lookup per page proves it: n
   * distinct sorted versions from `low` end at low+n-1 only if none is missing. Should that fail
   * (a hand-edited file), the page is read again with its versions.
   */
  private readForwardPage(streamId: string, low: number, high: number, take: number): RecordedEvent[] {
    const rows = this.readForwardLean.all(streamId, low, high, take);
    const decoder = new RowDecoder();
    const page = new Array<RecordedEvent>(rows.length);
    if (rows.length === 0) return page;
    if (this.versionAt.get(rows[rows.length - 1]![0]) !== low + rows.length - 1) {
      const full = this.readForward.all(streamId, low, high, take);
      return full.map((row) => decoder.streamRow(streamId, row));
    }
    for (let i = 0; i < rows.length; i++) page[i] = decoder.leanRow(streamId, low + i, rows[i]!);
    return page;
  }

  private readBackwardPage(streamId: string, low: number, high: number, take: number): RecordedEvent[] {
    const rows = this.readBackward.all(streamId, low, high, take);
    const decoder = new RowDecoder();
    const page = new Array<RecordedEvent>(rows.length);
    for (let i = 0; i < rows.length; i++) page[i] = decoder.streamRow(streamId, rows[i]!);
    return page;
  }

  readAll(options?: ReadAllOptions): EventStream<RecordedEvent> {
    const range = resolveLogRange(options);
    const self = this;
    return new PagedEventStream(async function* () {
      let next = Math.max(1, range.fromPosition);
      let remaining = range.limit;
      while (remaining > 0) {
        self.assertOpen();
        const take = Math.min(self.pageSize, remaining);
        const filter = range.filter;
        const rows = self.query(() => (filter === undefined ? self.readLog.all(next, take) : self.readFiltered(filter, next, take)));
        if (rows.length === 0) return;
        const decoder = new RowDecoder();
        const page = new Array<RecordedEvent>(rows.length);
        for (let i = 0; i < rows.length; i++) page[i] = decoder.logRow(rows[i]!);
        next = rows[rows.length - 1]![0] + 1;
        remaining -= rows.length;
        yield page;
        if (rows.length < take) return;
      }
    });
  }

  /** One prepared statement per filter shape: types only, categories only, or both. */
  private readFiltered(filter: ResolvedReadAllFilter, from: number, limit: number): LogRow[] {
    const key = `${filter.types?.length ?? 0}:${filter.categories?.length ?? 0}`;
    let statement = this.filteredReads.get(key);
    if (statement === undefined) {
      const list = (n: number) => new Array(n).fill('?').join(', ');
      const where = [
        'position >= ?',
        ...(filter.types === undefined ? [] : [`type IN (${list(filter.types.length)})`]),
        ...(filter.categories === undefined ? [] : [`category IN (${list(filter.categories.length)})`]),
      ].join(' AND ');
      statement = this.db
        .prepare(
          `SELECT position, stream_id, version, type, data, metadata, event_id, recorded_at
           FROM eventfold_events WHERE ${where} ORDER BY position ASC LIMIT ?`,
        )
        .raw() as BetterSqlite3.Statement<unknown[], LogRow>;
      if (this.filteredReads.size > 64) this.filteredReads.clear();
      this.filteredReads.set(key, statement);
    }
    return statement.all(from, ...(filter.types ?? []), ...(filter.categories ?? []), limit);
  }

  async streamVersion(streamId: string): Promise<number> {
    this.assertOpen();
    resolveStreamRange(streamId, undefined);
    return this.query(() => this.writer.streamVersion(streamId)) ?? 0;
  }

  async headPosition(): Promise<number> {
    this.assertOpen();
    return this.query(() => this.writer.headPosition());
  }

  /**
   * Closes the store. A connection the store opened itself (`{ path }`) is closed with it; a
   * `{ database }` passed in belongs to the caller and stays open. Later calls reject with
   * `StoreClosedError`.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    // Appends already accepted are committed first (synchronously, before the connection closes).
    const draining = this.committer?.drain();
    this.closed = true;
    this.hooks.length = 0;
    this.listeners.clear();
    if (this.ownsDatabase) this.db.close();
    await draining;
  }

  private query<T>(run: () => T): T {
    try {
      return run();
    } catch (error) {
      throw translateSqliteError(error, WHAT);
    }
  }

  private assertOpen(): void {
    if (this.closed || !this.db.open) throw new StoreClosedError('SQLite event store');
  }
}
