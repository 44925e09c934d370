import type BetterSqlite3 from 'better-sqlite3';
import { InvalidArgumentError } from '../errors.js';
import { frozenDate } from '../events/frozen-date.js';
import type { RecordedEvent } from '../events/types.js';
import type { AppendResult } from '../store/event-store.js';
import { checkExpectedVersion } from '../store/expected-version.js';
import type { GroupMember, GroupOutcome } from '../store/group-commit.js';
import { recordEvents, type PreparedAppend } from '../store/store-input.js';
import { translateSqliteError } from './connection.js';
import { metadataColumn } from './rows.js';

/**
 * Runs inside every append's write transaction, on the store's connection, after the events are
 * inserted and before COMMIT. Writes it makes through `db` commit or roll back with the events; a
 * throw aborts the append and nothing is written. Must be synchronous. With group commit, each
 * append (each `append` or `appendMany` call) runs its hooks in its own savepoint: a throw rolls
 * back that append only.
 */
export type SqliteAppendHook = (events: readonly RecordedEvent[], db: BetterSqlite3.Database) => void;

/** Rows per multi-row INSERT for large appends: fewer statement runs, 8 × 32 = 256 parameters. */
const INSERT_CHUNK = 32;
const INSERT_COLUMNS = '(position, stream_id, version, type, data, metadata, event_id, recorded_at)';

/**
 * The write side of `SqliteEventStore`: the version checks, the inserts and the hooks of one write
 * transaction, for one append (`commitOne`) or for a group of them (`commitGroup`).
 */
export class SqliteAppendWriter {
  private readonly versionOf: BetterSqlite3.Statement<[string], number>;
  private readonly lastPosition: BetterSqlite3.Statement<[], number>;
  private readonly insert: BetterSqlite3.Statement<[number, string, number, string, string, string | null, string, number]>;
  private readonly insertChunk: BetterSqlite3.Statement<unknown[]>;
  private readonly writeOne: (appends: readonly PreparedAppend[]) => AppendResult[];
  private readonly writeMember: BetterSqlite3.Transaction<(appends: readonly PreparedAppend[]) => AppendResult[]>;
  private readonly writeGroup: (members: readonly GroupMember[]) => GroupOutcome<AppendResult[]>[];

  constructor(
    private readonly db: BetterSqlite3.Database,
    private readonly hooks: readonly SqliteAppendHook[],
    private readonly what: string,
  ) {
    this.versionOf = db
      .prepare<[string], number>('SELECT version FROM eventfold_events WHERE stream_id = ? ORDER BY version DESC LIMIT 1')
      .pluck();
    this.lastPosition = db.prepare<[], number>('SELECT position FROM eventfold_events ORDER BY position DESC LIMIT 1').pluck();
    this.insert = db.prepare(`INSERT INTO eventfold_events ${INSERT_COLUMNS} VALUES (?, ?, ?, ?, ?, ?, ?, ?)`);
    this.insertChunk = db.prepare<unknown[]>(
      `INSERT INTO eventfold_events ${INSERT_COLUMNS} VALUES ${new Array(INSERT_CHUNK).fill('(?, ?, ?, ?, ?, ?, ?, ?)').join(', ')}`,
    );
    // `.immediate`: take the write lock at BEGIN, so the version checks read the state the inserts
    // commit on top of, even with other processes writing to the same file.
    const write = db.transaction((appends: readonly PreparedAppend[]) => this.writeAppends(appends));
    this.writeOne = (appends) => write.immediate(appends);
    // Called inside the group's transaction, better-sqlite3 runs it as a SAVEPOINT: a member that
    // fails (a conflict, a throwing hook) rolls back to it and leaves the others in place.
    this.writeMember = db.transaction((appends: readonly PreparedAppend[]) => this.writeAppends(appends));
    const group = db.transaction((members: readonly GroupMember[]) => this.writeMembers(members));
    this.writeGroup = (members) => group.immediate(members);
  }

  /** The stream's version (0 when it does not exist), outside any transaction. */
  streamVersion(streamId: string): number | undefined {
    return this.versionOf.get(streamId);
  }

  headPosition(): number {
    return this.lastPosition.get() ?? 0;
  }

  /** One call's appends in one write transaction. Throws the (translated) error of a failure. */
  commitOne(appends: readonly PreparedAppend[]): AppendResult[] {
    try {
      return this.writeOne(appends);
    } catch (error) {
      throw translateSqliteError(error, this.what);
    }
  }

  /**
   * A group of calls in one write transaction, one savepoint each: one outcome per member. Throws
   * when the transaction as a whole failed (BEGIN, COMMIT, or an error that made SQLite roll it
   * back): then no member was committed.
   */
  commitGroup(members: readonly GroupMember[]): GroupOutcome<AppendResult[]>[] {
    if (members.length === 1) {
      try {
        return [{ ok: true, value: this.commitOne(members[0]!.appends) }];
      } catch (error) {
        return [{ ok: false, error }];
      }
    }
    try {
      return this.writeGroup(members);
    } catch (error) {
      throw translateSqliteError(error, this.what);
    }
  }

  private writeMembers(members: readonly GroupMember[]): GroupOutcome<AppendResult[]>[] {
    const outcomes: GroupOutcome<AppendResult[]>[] = [];
    for (const member of members) {
      try {
        outcomes.push({ ok: true, value: this.needsSavepoint(member) ? this.writeMember(member.appends) : this.writeAppends(member.appends) });
      } catch (error) {
        // Some failures (disk full, I/O) make SQLite roll back the whole transaction: then the
        // members before this one are gone too, so the group fails as a whole.
        if (!this.db.inTransaction) throw error;
        outcomes.push({ ok: false, error: translateSqliteError(error, this.what) });
      }
    }
    return outcomes;
  }

  /**
   * A member that can fail only before it writes, or in its one statement (which SQLite undoes by
   * itself), needs no savepoint: one append of at most one event and no hooks. The version check
   * comes before the insert, so a conflict leaves nothing behind.
   */
  private needsSavepoint(member: GroupMember): boolean {
    return this.hooks.length > 0 || member.appends.length !== 1 || member.appends[0]!.events.length > 1;
  }

  /** Body of a write transaction (or savepoint): check every expected version, insert, run hooks. */
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
}
