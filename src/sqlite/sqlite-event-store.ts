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
import { checkExpectedVersion } from '../store/expected-version.js';
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
import {
  openConnection,
  translateSqliteError,
  type SqliteConnectionOptions,
  type SqliteTuningOptions,
} from './connection.js';
import { EVENT_MIGRATIONS, EVENTS_COMPONENT } from './event-schema.js';
import { metadataColumn, RowDecoder, type LeanStreamRow, type LogRow, type StreamRow } from './rows.js';
import { migrateSchema } from './schema.js';
import { frozenDate } from '../events/frozen-date.js';

/**
 * Runs inside every append's write transaction, on the store's connection, after the events are
 * inserted and before COMMIT. Writes it makes through `db` commit or roll back with the events; a
 * throw aborts the append and nothing is written. Must be synchronous.
 */
export type SqliteAppendHook = (events: readonly RecordedEvent[], db: BetterSqlite3.Database) => void;

/** Called after an append committed, with the position of its last event (in this process only). */
export type SqliteAppendedListener = (lastPosition: number) => void;

export type SqliteEventStoreOptions = SqliteConnectionOptions &
  SqliteTuningOptions & {
    /** Limits on events per append and bytes per event (defaults: `DEFAULT_EVENT_LIMITS`). */
    readonly limits?: Partial<EventLimits>;
    /** Events fetched per database round trip when reading (and per `pages()` page). Default 1000. */
    readonly pageSize?: number;
  };

export const DEFAULT_SQLITE_PAGE_SIZE = 1000;
const MAX_VERSION = Number.MAX_SAFE_INTEGER;
/** Rows per multi-row INSERT for large appends: fewer statement runs, 8 × 32 = 256 parameters. */
const INSERT_CHUNK = 32;
const INSERT_COLUMNS = '(position, stream_id, version, type, data, metadata, event_id, recorded_at)';

/**
 * The event store on SQLite (better-sqlite3). Embedded, durable (WAL, `synchronous=FULL` by
 * default) and safe to share between processes: every append is one `BEGIN IMMEDIATE` transaction,
 * which takes the database's single write lock before the version check, so checks and inserts of
 * different connections and processes never interleave.
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

  private readonly versionOf: BetterSqlite3.Statement<[string], number>;
  private readonly lastPosition: BetterSqlite3.Statement<[], number>;
  private readonly insert: BetterSqlite3.Statement<[number, string, number, string, string, string | null, string, number]>;
  private readonly insertChunk: BetterSqlite3.Statement<unknown[]>;
  private readonly readForward: BetterSqlite3.Statement<[string, number, number, number], StreamRow>;
  private readonly readForwardLean: BetterSqlite3.Statement<[string, number, number, number], LeanStreamRow>;
  private readonly versionAt: BetterSqlite3.Statement<[number], number>;
  private readonly readBackward: BetterSqlite3.Statement<[string, number, number, number], StreamRow>;
  private readonly readLog: BetterSqlite3.Statement<[number, number], LogRow>;
  private readonly commitAppends: (appends: readonly PreparedAppend[]) => AppendResult[];

  constructor(options: SqliteEventStoreOptions) {
    const pageSize = options?.pageSize ?? DEFAULT_SQLITE_PAGE_SIZE;
    if (!Number.isSafeInteger(pageSize) || pageSize < 1) {
      throw new InvalidArgumentError(`SqliteEventStore: pageSize must be a positive integer, got ${String(pageSize)}.`);
    }
    this.pageSize = pageSize;
    this.limits = resolveLimits(options?.limits);
    const { db, owned } = openConnection(options, 'SqliteEventStore');
    this.db = db;
    this.ownsDatabase = owned;
    try {
      migrateSchema(db, EVENTS_COMPONENT, EVENT_MIGRATIONS);
      this.versionOf = db
        .prepare<[string], number>(
          'SELECT version FROM eventfold_events WHERE stream_id = ? ORDER BY version DESC LIMIT 1',
        )
        .pluck();
      this.lastPosition = db
        .prepare<[], number>('SELECT position FROM eventfold_events ORDER BY position DESC LIMIT 1')
        .pluck();
      this.insert = db.prepare(`INSERT INTO eventfold_events ${INSERT_COLUMNS} VALUES (?, ?, ?, ?, ?, ?, ?, ?)`);
      this.insertChunk = db.prepare<unknown[]>(
        `INSERT INTO eventfold_events ${INSERT_COLUMNS} VALUES ${new Array(INSERT_CHUNK).fill('(?, ?, ?, ?, ?, ?, ?, ?)').join(', ')}`,
      );
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
      // `.immediate`: take the write lock at BEGIN, so the version checks below read the state
      // the inserts will commit on top of, even with other processes writing to the same file.
      const write = db.transaction((appends: readonly PreparedAppend[]) => this.writeAppends(appends));
      this.commitAppends = (appends) => write.immediate(appends);
    } catch (error) {
      if (owned) db.close();
      throw translateSqliteError(error, 'SqliteEventStore');
    }
  }

  /** The connection the store writes through (for read models and checkpoints in the same file). */
  get database(): BetterSqlite3.Database {
    this.assertOpen();
    return this.db;
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
      throw translateSqliteError(error, 'SqliteEventStore');
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
    return this.commit([prepared])[0]!;
  }

  async appendMany(appends: readonly StreamAppend[]): Promise<AppendResult[]> {
    this.assertOpen();
    return this.commit(prepareAppendMany(appends, this.limits));
  }

  private commit(appends: readonly PreparedAppend[]): AppendResult[] {
    let results: AppendResult[];
    try {
      results = this.commitAppends(appends);
    } catch (error) {
      throw translateSqliteError(error, 'SqliteEventStore');
    }
    if (this.listeners.size > 0) this.notify(results);
    return results;
  }

  /** Body of the write transaction: check every expected version, insert, run hooks. */
  private writeAppends(appends: readonly PreparedAppend[]): AppendResult[] {
    const versions = new Array<number>(appends.length);
    for (let i = 0; i < appends.length; i++) {
      const append = appends[i]!;
      const version = this.versionOf.get(append.streamId) ?? 0;
      checkExpectedVersion(append.streamId, append.expectedVersion, version);
      versions[i] = version;
    }
    const recordedAt = frozenDate(Date.now());
    const recordedMs = recordedAt.getTime();
    let position = this.lastPosition.get() ?? 0;
    const results = new Array<AppendResult>(appends.length);
    const all: RecordedEvent[] = [];
    for (let i = 0; i < appends.length; i++) {
      const append = appends[i]!;
      const version = versions[i]!;
      const first = position + 1;
      const recorded = recordEvents(append, version + 1, (index) => first + index, recordedAt);
      this.insertRows(append, recorded, recordedMs);
      for (let j = 0; j < recorded.length; j++) all.push(recorded[j]!);
      position += recorded.length;
      results[i] = {
        streamId: append.streamId,
        version: version + recorded.length,
        position: recorded.length === 0 ? 0 : position,
        events: Object.freeze(recorded),
      };
    }
    for (const hook of this.hooks) {
      const returned = hook(all, this.db) as unknown;
      if (typeof (returned as { then?: unknown } | undefined)?.then === 'function') {
        throw new InvalidArgumentError(
          'A SQLite append hook returned a promise; hooks run inside the write transaction and must be ' +
            'synchronous. The append was rolled back.',
        );
      }
    }
    return results;
  }

  /** Inserts one append's rows: in chunks of INSERT_CHUNK rows per statement, the rest one by one. */
  private insertRows(append: PreparedAppend, recorded: readonly RecordedEvent[], recordedMs: number): void {
    const streamId = append.streamId;
    let j = 0;
    if (recorded.length >= INSERT_CHUNK) {
      const params = new Array<unknown>(INSERT_CHUNK * 8);
      for (; j + INSERT_CHUNK <= recorded.length; j += INSERT_CHUNK) {
        for (let k = 0; k < INSERT_CHUNK; k++) {
          const event = recorded[j + k]!;
          const source = append.events[j + k]!;
          const at = k * 8;
          params[at] = event.position;
          params[at + 1] = streamId;
          params[at + 2] = event.version;
          params[at + 3] = event.type;
          params[at + 4] = source.dataJson;
          params[at + 5] = metadataColumn(source.metadataJson);
          params[at + 6] = event.eventId;
          params[at + 7] = recordedMs;
        }
        this.insertChunk.run(params);
      }
    }
    for (; j < recorded.length; j++) {
      const event = recorded[j]!;
      const source = append.events[j]!;
      this.insert.run(
        event.position,
        streamId,
        event.version,
        event.type,
        source.dataJson,
        metadataColumn(source.metadataJson),
        event.eventId,
        recordedMs,
      );
    }
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
        if (first && this.query(() => this.versionOf.get(streamId)) === undefined) {
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
        const rows = self.query(() => self.readLog.all(next, take));
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

  async streamVersion(streamId: string): Promise<number> {
    this.assertOpen();
    resolveStreamRange(streamId, undefined);
    return this.query(() => this.versionOf.get(streamId)) ?? 0;
  }

  async headPosition(): Promise<number> {
    this.assertOpen();
    return this.query(() => this.lastPosition.get()) ?? 0;
  }

  /**
   * Closes the store. A connection the store opened itself (`{ path }`) is closed with it; a
   * `{ database }` passed in belongs to the caller and stays open. Later calls reject with
   * `StoreClosedError`.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.hooks.length = 0;
    this.listeners.clear();
    if (this.ownsDatabase) this.db.close();
  }

  private query<T>(run: () => T): T {
    try {
      return run();
    } catch (error) {
      throw translateSqliteError(error, 'SqliteEventStore');
    }
  }

  private assertOpen(): void {
    if (this.closed || !this.db.open) throw new StoreClosedError('SQLite event store');
  }
}
