/**
 * SQLite failures, provoked on real files, reach the caller as typed eventfold errors with a stable
 * code, the driver's error as `cause` and the right `transient` flag, from every public method of
 * the event store, the snapshot store and the checkpoint store.
 */
import { closeSync, openSync, statSync, writeFileSync, writeSync } from 'node:fs';
import Database from 'better-sqlite3';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { isEventfoldError, isTransientError } from '../src/index.js';
import { SqliteCheckpointStore, SqliteEventStore, SqliteSnapshotStore } from '../src/sqlite/index.js';
import { translateSqliteError } from '../src/sqlite/sqlite-errors.js';
import { sqliteTempDir } from './fixtures/sqlite-temp.js';
import { failure, type Failure } from './support/failure.js';

const temp = sqliteTempDir('eventfold-sqlite-errors-');
afterAll(() => temp.cleanup());
let counter = 0;
const freshFile = () => temp.file(`errors-${++counter}.db`);

function expectTyped(error: Failure, code: string, transient: boolean, driverCode: RegExp, label: string): void {
  expect(isEventfoldError(error), `${label}: ${String(error)}`).toBe(true);
  expect(error.code, `${label}: ${error.message}`).toBe(code);
  expect(error.transient, label).toBe(transient);
  expect(isTransientError(error), label).toBe(transient);
  expect(error.cause, label).toBeInstanceOf(Database.SqliteError);
  expect((error.cause as { code: string }).code, label).toMatch(driverCode);
  expect(error.driverCode, label).toMatch(driverCode);
  expect(isEventfoldError(error.cause), `${label}: the cause is the driver's error`).toBe(false);
}

const snapshot = (streamId: string, state: unknown = { n: 1 }) => ({
  streamId,
  version: 1,
  schemaVersion: 1,
  state: state as never,
  takenAt: new Date(0),
});
const checkpoint = { position: 1, version: 1 };

/** A file with every eventfold table, and the three stores on one connection to it. */
function stores(path: string, busyTimeout = 5000) {
  const store = new SqliteEventStore({ path, busyTimeout });
  const snapshots = new SqliteSnapshotStore({ database: store.database, busyTimeout });
  const checkpoints = new SqliteCheckpointStore(store.database);
  return { store, snapshots, checkpoints };
}

function writeCalls(s: ReturnType<typeof stores>): Array<[string, () => unknown]> {
  return [
    ['append', () => s.store.append('s', [{ type: 'A', data: 1 }], { expectedVersion: 'any' })],
    ['appendMany', () => s.store.appendMany([{ streamId: 's', events: [{ type: 'A', data: 1 }], expectedVersion: 'any' }])],
    ['transaction', () => s.store.transaction((db) => db.prepare('DELETE FROM eventfold_snapshots').run())],
    ['snapshots.save', () => s.snapshots.save(snapshot('s'))],
    ['checkpoints.save', () => s.checkpoints.save('p', undefined, checkpoint)],
    ['checkpoints.delete', () => s.checkpoints.delete('p')],
  ];
}

describe('SQLite errors become typed eventfold errors', () => {
  it('another connection holding the write lock past busyTimeout: StoreTimeoutError (transient) from every write, nothing written', async () => {
    const file = freshFile();
    const s = stores(file, 50);
    const blocker = new Database(file);
    blocker.prepare('BEGIN IMMEDIATE').run();
    try {
      for (const [label, call] of writeCalls(s)) {
        const error = await failure(call);
        expectTyped(error, 'STORE_TIMEOUT', true, /^SQLITE_BUSY/, label);
        expect(error.message).toContain('busyTimeout');
      }
      // Opening a store that must first create its tables waits for the same lock.
      const fresh = new Database(freshFile());
      fresh.pragma('journal_mode = WAL');
      fresh.prepare('BEGIN IMMEDIATE').run();
      const path = fresh.name;
      const opening = await failure(() => new SqliteEventStore({ path, busyTimeout: 50 }));
      expectTyped(opening, 'STORE_TIMEOUT', true, /^SQLITE_BUSY/, 'constructor');
      // The same for a checkpoint store on a connection whose file lacks its table.
      const other = new Database(path, { timeout: 50 });
      const checkpointTable = await failure(() => new SqliteCheckpointStore(other));
      expectTyped(checkpointTable, 'STORE_TIMEOUT', true, /^SQLITE_BUSY/, 'SqliteCheckpointStore constructor');
      other.close();
      fresh.prepare('ROLLBACK').run();
      fresh.close();
      // Reads do not wait for writers in WAL mode.
      expect(await s.store.headPosition()).toBe(0);
    } finally {
      blocker.prepare('ROLLBACK').run();
      blocker.close();
    }
    expect(await s.store.headPosition()).toBe(0);
    expect(await s.checkpoints.load('p')).toBeUndefined();
    expect((await s.store.append('s', [{ type: 'A', data: 1 }], { expectedVersion: 'no-stream' })).version).toBe(1);
    await s.store.close();
  });

  it('a read-only connection: StoreReadOnlyError (not transient) from every write; reads still work', async () => {
    const file = freshFile();
    const setup = stores(file);
    await setup.store.append('s', [{ type: 'A', data: 1 }], { expectedVersion: 'no-stream' });
    await setup.store.close();
    const readOnly = new Database(file, { readonly: true });
    const store = new SqliteEventStore({ database: readOnly });
    const s = { store, snapshots: new SqliteSnapshotStore({ database: readOnly }), checkpoints: new SqliteCheckpointStore(readOnly) };
    for (const [label, call] of writeCalls(s)) {
      const error = await failure(call);
      expectTyped(error, 'STORE_READ_ONLY', false, /^SQLITE_READONLY/, label);
      expect(error.message).toContain('read-only');
    }
    expect(await store.streamVersion('s')).toBe(1);
    expect((await store.readStream('s').toArray()).map((e) => e.data)).toEqual([1]);
    expect(await s.snapshots.load('s')).toBeUndefined();
    expect(await s.checkpoints.load('p')).toBeUndefined();
    await store.close();
    readOnly.close();
  });

  it('a full database (max_page_count): StorageFullError (transient), nothing written, fine again once there is room', async () => {
    const file = freshFile();
    const s = stores(file);
    await s.store.append('s', [{ type: 'A', data: 1 }], { expectedVersion: 'no-stream' });
    const pages = s.store.database.pragma('page_count', { simple: true }) as number;
    s.store.database.pragma(`max_page_count = ${pages}`);
    const big = 'x'.repeat(200_000);
    const calls: Array<[string, () => unknown]> = [
      ['append', () => s.store.append('s', [{ type: 'Big', data: big }], { expectedVersion: 1 })],
      ['appendMany', () => s.store.appendMany([{ streamId: 't', events: [{ type: 'Big', data: big }], expectedVersion: 'no-stream' }])],
      ['snapshots.save', () => s.snapshots.save(snapshot('s', { big }))],
      [
        'checkpoints.save',
        async () => {
          // Checkpoint rows are small: save new ones until the last free page is used up.
          for (let i = 0; i < 100_000; i++) await s.checkpoints.save(`p-${i}-${big.slice(0, 150)}`, undefined, checkpoint);
        },
      ],
    ];
    for (const [label, call] of calls) {
      const error = await failure(call);
      expectTyped(error, 'STORAGE_FULL', true, /^SQLITE_FULL/, label);
      expect(error.message).toContain('full');
    }
    expect(await s.store.streamVersion('s')).toBe(1);
    expect(await s.store.headPosition()).toBe(1);
    s.store.database.pragma('max_page_count = 1073741823');
    expect((await s.store.append('s', [{ type: 'Big', data: big }], { expectedVersion: 1 })).version).toBe(2);
    await s.store.close();
  });

  it('a path that cannot be opened: a missing directory is an InvalidArgumentError, an unopenable file a typed store error', async () => {
    const missingDir = await failure(() => new SqliteEventStore({ path: temp.file('no-such-dir/events.db') }));
    expect(missingDir.code).toBe('INVALID_ARGUMENT');
    expect(missingDir.message).toContain('directory does not exist');
    const directory = await failure(() => new SqliteEventStore({ path: temp.dir }));
    expectTyped(directory, 'STORE_UNAVAILABLE', true, /^SQLITE_CANTOPEN/, 'a directory as the path');
  });

  it('a database file with damaged pages: StoreCorruptError (not transient) on open or read', async () => {
    const file = freshFile();
    const s = stores(file);
    for (let i = 0; i < 20; i++) {
      const events = Array.from({ length: 50 }, (_, j) => ({ type: 'A', data: { i, j, pad: 'x'.repeat(100) } }));
      await s.store.append('s', events, { expectedVersion: 'any' });
    }
    await s.store.close();
    // Closing the last connection checkpoints the WAL into the file; then scribble over page headers.
    const pageSize = 4096;
    const pages = Math.floor(statSync(file).size / pageSize);
    expect(pages).toBeGreaterThan(10);
    const fd = openSync(file, 'r+');
    for (let page = 3; page < pages; page += 3) writeSync(fd, Buffer.alloc(100, 0xff), 0, 100, page * pageSize);
    closeSync(fd);
    let reopened: SqliteEventStore | undefined;
    const error = await failure(async () => {
      reopened = new SqliteEventStore({ path: file });
      await reopened.readAll().toArray();
    });
    await reopened?.close();
    expectTyped(error, 'STORE_CORRUPT', false, /^SQLITE_CORRUPT/, 'damaged pages');
  });

  it('a file that is not a database: StoreCorruptError (not transient) when a store opens it', async () => {
    const file = freshFile();
    writeFileSync(file, Buffer.alloc(8192, 0x5a));
    for (const [label, open] of [
      ['SqliteEventStore', () => new SqliteEventStore({ path: file })],
      ['SqliteSnapshotStore', () => new SqliteSnapshotStore({ path: file })],
    ] as const) {
      const error = await failure(open);
      expectTyped(error, 'STORE_CORRUPT', false, /^SQLITE_NOTADB/, label);
    }
  });

  it('a stored row whose JSON was damaged: StoreCorruptError (not transient), not a raw SyntaxError', async () => {
    const file = freshFile();
    const s = stores(file);
    await s.store.append('s', [{ type: 'A', data: { n: 1 }, metadata: { m: 1 } }], { expectedVersion: 'no-stream' });
    await s.snapshots.save(snapshot('s'));
    const raw = new Database(file);
    raw.prepare("UPDATE eventfold_events SET data = '{\"n\": 1' WHERE position = 1").run();
    raw.prepare("UPDATE eventfold_snapshots SET state = 'nope' WHERE stream_id = 's'").run();
    raw.close();
    for (const [label, call] of [
      ['readStream', () => s.store.readStream('s').toArray()],
      ['readStream backwards', () => s.store.readStream('s', { backwards: true }).toArray()],
      ['readAll', () => s.store.readAll().toArray()],
      ['snapshots.load', () => s.snapshots.load('s')],
    ] as const) {
      const error = await failure(call);
      expect(error.code, `${label}: ${String(error)}`).toBe('STORE_CORRUPT');
      expect(isTransientError(error), label).toBe(false);
      expect(error.cause, label).toBeInstanceOf(SyntaxError);
    }
    await s.store.close();
  });

  it("eventfold's tables dropped behind an open store: SchemaNotMigratedError (not transient)", async () => {
    const s = stores(freshFile());
    s.store.database.exec('DROP TABLE eventfold_events; DROP TABLE eventfold_snapshots; DROP TABLE eventfold_projection_checkpoints');
    const calls: Array<[string, () => unknown]> = [
      ['append', () => s.store.append('s', [{ type: 'A', data: 1 }], { expectedVersion: 'any' })],
      ['readStream', () => s.store.readStream('s').toArray()],
      ['readAll', () => s.store.readAll().toArray()],
      ['streamVersion', () => s.store.streamVersion('s')],
      ['headPosition', () => s.store.headPosition()],
      ['snapshots.load', () => s.snapshots.load('s')],
      ['snapshots.save', () => s.snapshots.save(snapshot('s'))],
      ['checkpoints.load', () => s.checkpoints.load('p')],
      ['checkpoints.get', () => s.checkpoints.get('p')],
    ];
    for (const [label, call] of calls) {
      const error = await failure(call);
      expectTyped(error, 'SCHEMA_NOT_MIGRATED', false, /^SQLITE_ERROR$/, label);
      expect(error.message).toMatch(/open the store again/i);
    }
    await s.store.close();
  });

  it('result codes the tests cannot provoke map by code (real better-sqlite3 SqliteError objects)', () => {
    const table: Array<[string, string, boolean]> = [
      ['SQLITE_LOCKED', 'TRANSACTION_CONFLICT', true],
      ['SQLITE_LOCKED_SHAREDCACHE', 'TRANSACTION_CONFLICT', true],
      ['SQLITE_BUSY_SNAPSHOT', 'TRANSACTION_CONFLICT', true],
      ['SQLITE_BUSY_RECOVERY', 'STORE_TIMEOUT', true],
      ['SQLITE_IOERR_WRITE', 'STORE_UNAVAILABLE', true],
      ['SQLITE_IOERR_FSYNC', 'STORE_UNAVAILABLE', true],
      ['SQLITE_CANTOPEN', 'STORE_UNAVAILABLE', true],
      ['SQLITE_NOMEM', 'STORE_UNAVAILABLE', true],
      ['SQLITE_CORRUPT', 'STORE_CORRUPT', false],
      ['SQLITE_CORRUPT_INDEX', 'STORE_CORRUPT', false],
      ['SQLITE_READONLY_DBMOVED', 'STORE_READ_ONLY', false],
      ['SQLITE_CONSTRAINT_UNIQUE', 'STORE_FAILURE', false],
      ['SQLITE_PERM', 'STORE_FAILURE', false],
    ];
    for (const [sqliteCode, code, transient] of table) {
      const driverError = new Database.SqliteError(`sqlite said ${sqliteCode}`, sqliteCode);
      const translated = translateSqliteError(driverError, 'SqliteEventStore') as Failure;
      expect(translated.code, sqliteCode).toBe(code);
      expect(translated.transient, sqliteCode).toBe(transient);
      expect(translated.cause).toBe(driverError);
    }
    const hookError = new Error('a hook gave up');
    expect(translateSqliteError(hookError, 'SqliteEventStore')).toBe(hookError);
  });

  it('every SQLite result code becomes an eventfold error with the driver error as cause (property)', () => {
    const families = ['BUSY', 'LOCKED', 'FULL', 'READONLY', 'CORRUPT', 'NOTADB', 'IOERR', 'CANTOPEN', 'NOMEM', 'ERROR', 'CONSTRAINT', 'PERM', 'ABORT', 'MISMATCH', 'RANGE', 'AUTH', 'TOOBIG', 'SCHEMA', 'INTERNAL'];
    fc.assert(
      fc.property(fc.constantFrom(...families), fc.option(fc.stringMatching(/^[A-Z]{1,10}$/)), fc.string(), (family, extended, message) => {
        const code = extended === null ? `SQLITE_${family}` : `SQLITE_${family}_${extended}`;
        const driverError = new Database.SqliteError(message, code);
        const translated = translateSqliteError(driverError, 'SqliteEventStore') as Failure;
        expect(isEventfoldError(translated), code).toBe(true);
        expect(translated.cause).toBe(driverError);
        expect(translated.driverCode).toBe(code);
        expect(typeof translated.transient).toBe('boolean');
      }),
      { numRuns: 300 },
    );
  });

  it('isEventfoldError is false for a raw SqliteError (it has a string code)', async () => {
    const raw = await failure(() => new Database(':memory:').exec('SELECT * FROM nowhere'));
    expect(raw).toBeInstanceOf(Database.SqliteError);
    expect(typeof raw.code).toBe('string');
    expect(isEventfoldError(raw)).toBe(false);
    expect(isEventfoldError(raw, 'SQLITE_ERROR')).toBe(false);
  });
});
