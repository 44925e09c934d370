import Database from 'better-sqlite3';
import fc from 'fast-check';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import {
  InMemoryEventStore,
  isEventfoldError,
  type AnyEvent,
  type RecordedEvent,
} from '../src/index.js';
import { SqliteEventStore, UnsupportedSchemaVersionError, type SqliteEventStoreOptions } from '../src/sqlite/index.js';
import { EVENT_MIGRATIONS } from '../src/sqlite/event-schema.js';
import { migrateSchema, schemaVersion } from '../src/sqlite/schema.js';
import { sqliteTempDir } from './fixtures/sqlite-temp.js';

const temp = sqliteTempDir();
afterAll(() => temp.cleanup());

const opened: SqliteEventStore[] = [];
function store(options: Partial<SqliteEventStoreOptions> & ({ path: string } | { database: Database.Database })): SqliteEventStore {
  const created = new SqliteEventStore(options as SqliteEventStoreOptions);
  opened.push(created);
  return created;
}
afterEach(async () => {
  for (const s of opened.splice(0)) await s.close();
});

let fileCounter = 0;
const freshFile = () => temp.file(`store-${++fileCounter}.db`);

const ev = (type: string, data: unknown = {}): AnyEvent => ({ type, data });

async function errorOf(action: () => unknown): Promise<unknown> {
  try {
    await action();
  } catch (error) {
    return error;
  }
  throw new Error('expected the action to fail');
}

describe.each([
  ['file', () => ({ path: freshFile() })],
  ['memory', () => ({ path: ':memory:' })],
])('SqliteEventStore (%s)', (_kind, location) => {
  it('round-trips events with metadata, versions, positions and ids', async () => {
    const s = store(location());
    const first = await s.append('order-1', [ev('Placed', { items: [1, 2] }), { type: 'Paid', data: 5, metadata: { correlationId: 'c1' } }], {
      expectedVersion: 'no-stream',
    });
    expect(first.version).toBe(2);
    expect(first.position).toBe(2);
    await s.append('order-2', [ev('Placed', null)], { expectedVersion: 0 });
    const stream = await s.readStream('order-1').toArray();
    expect(stream.map((e) => [e.type, e.data, e.metadata, e.version, e.position])).toEqual([
      ['Placed', { items: [1, 2] }, {}, 1, 1],
      ['Paid', 5, { correlationId: 'c1' }, 2, 2],
    ]);
    expect(stream.map((e) => e.eventId)).toEqual(first.events.map((e) => e.eventId));
    expect(stream[0]!.recordedAt.getTime()).toBe(first.events[0]!.recordedAt.getTime());
    // Read back deeply frozen, like the in-memory store.
    expect(Object.isFrozen(stream[0])).toBe(true);
    expect(Object.isFrozen((stream[0]!.data as { items: number[] }).items)).toBe(true);
    const all = await s.readAll().toArray();
    expect(all.map((e) => [e.streamId, e.version, e.position])).toEqual([
      ['order-1', 1, 1],
      ['order-1', 2, 2],
      ['order-2', 1, 3],
    ]);
    expect(await s.headPosition()).toBe(3);
    expect(await s.streamVersion('order-1')).toBe(2);
    expect(await s.streamVersion('nope')).toBe(0);
  });

  it('enforces every expectedVersion kind and reports the real version', async () => {
    const s = store(location());
    await s.append('s', [ev('A'), ev('B')], { expectedVersion: 'no-stream' });
    const cases: Array<[unknown, boolean]> = [
      ['no-stream', false],
      ['stream-exists', true],
      ['any', true],
      [2, true],
      [1, false],
      [3, false],
      [0, false],
    ];
    for (const [expected, ok] of cases) {
      const before = await s.streamVersion('s');
      if (ok) {
        const result = await s.append('s', [ev('C')], { expectedVersion: expected as 'any' });
        expect(result.version).toBe(before + 1);
        // Keep the stream at version 2 for the next case.
        s.transaction((db) => db.prepare('DELETE FROM eventfold_events WHERE stream_id = ? AND version > 2').run('s'));
      } else {
        const error = await errorOf(() => s.append('s', [ev('C')], { expectedVersion: expected as 'any' }));
        // 0 and 'no-stream' meant "create it": the stream exists, its own kind of conflict.
        const creates = expected === 0 || expected === 'no-stream';
        expect(isEventfoldError(error, creates ? 'STREAM_ALREADY_EXISTS' : 'CONCURRENCY_CONFLICT')).toBe(true);
        expect(error).toMatchObject({ streamId: 's', expectedVersion: expected, actualVersion: 2 });
      }
      expect(await s.streamVersion('s')).toBe(2);
    }
    const missing = await errorOf(() => s.append('new', [ev('A')], { expectedVersion: 'stream-exists' }));
    expect(missing).toMatchObject({ code: 'CONCURRENCY_CONFLICT', actualVersion: 0 });
    expect(await s.streamVersion('new')).toBe(0);
  });

  it('appendMany is atomic across streams: one failed check writes nothing', async () => {
    const s = store(location());
    await s.append('user-1', [ev('Registered')], { expectedVersion: 'no-stream' });
    await s.append('username-ann', [ev('Reserved')], { expectedVersion: 'no-stream' });
    const error = await errorOf(() =>
      s.appendMany([
        { streamId: 'user-2', events: [ev('Registered')], expectedVersion: 'no-stream' },
        { streamId: 'username-ann', events: [ev('Reserved')], expectedVersion: 'no-stream' },
      ]),
    );
    expect(error).toMatchObject({ code: 'STREAM_ALREADY_EXISTS', streamId: 'username-ann', actualVersion: 1 });
    expect(await s.streamVersion('user-2')).toBe(0);
    expect(await s.headPosition()).toBe(2);

    const results = await s.appendMany([
      { streamId: 'user-2', events: [ev('Registered'), ev('Named')], expectedVersion: 'no-stream' },
      { streamId: 'user-1', events: [], expectedVersion: 1 },
      { streamId: 'username-bob', events: [ev('Reserved')], expectedVersion: 0 },
    ]);
    expect(results.map((r) => [r.streamId, r.version, r.position])).toEqual([
      ['user-2', 2, 4],
      ['user-1', 1, 0],
      ['username-bob', 1, 5],
    ]);
    const log = await s.readAll({ fromPosition: 3 }).toArray();
    expect(log.map((e) => [e.streamId, e.position])).toEqual([
      ['user-2', 3],
      ['user-2', 4],
      ['username-bob', 5],
    ]);
  });

  it('rejects bad input before writing anything', async () => {
    const s = store({ ...location(), limits: { maxEventBytes: 100, maxEventsPerAppend: 3 } });
    await s.append('s', [ev('A')], { expectedVersion: 'any' });
    const attempts: Array<[() => Promise<unknown>, string]> = [
      [() => s.append('', [ev('A')], { expectedVersion: 'any' }), 'INVALID_STREAM_ID'],
      [() => s.append('s\n', [ev('A')], { expectedVersion: 'any' }), 'INVALID_STREAM_ID'],
      [() => s.append('s', [ev('A', { when: new Date() })], { expectedVersion: 'any' }), 'INVALID_EVENT'],
      [() => s.append('s', [ev('A', { n: Number.NaN })], { expectedVersion: 'any' }), 'INVALID_EVENT'],
      [() => s.append('s', [ev('A', 'x'.repeat(200))], { expectedVersion: 'any' }), 'BATCH_TOO_LARGE'],
      [() => s.append('s', [ev('A'), ev('B'), ev('C'), ev('D')], { expectedVersion: 'any' }), 'BATCH_TOO_LARGE'],
      [() => s.append('s', [ev('A')], { expectedVersion: -1 as never }), 'INVALID_ARGUMENT'],
      [
        () =>
          s.appendMany([
            { streamId: 't', events: [ev('A')], expectedVersion: 'any' },
            { streamId: 't', events: [ev('B')], expectedVersion: 'any' },
          ]),
        'INVALID_ARGUMENT',
      ],
      [
        () =>
          s.appendMany([
            { streamId: 't', events: [ev('A'), ev('B')], expectedVersion: 'any' },
            { streamId: 'u', events: [ev('A'), ev('B')], expectedVersion: 'any' },
          ]),
        'BATCH_TOO_LARGE',
      ],
      [() => s.readStream('s', { fromVersion: -1 }).toArray(), 'INVALID_ARGUMENT'],
      [() => s.readAll({ limit: 1.5 }).toArray(), 'INVALID_ARGUMENT'],
    ];
    for (const [attempt, code] of attempts) {
      const error = await errorOf(attempt);
      expect(isEventfoldError(error, code), `${String(error)} should have code ${code}`).toBe(true);
    }
    expect(await s.headPosition()).toBe(1);
  });

  it('reads streams forwards and backwards with bounds and limits, page by page', async () => {
    const s = store({ ...location(), pageSize: 3 });
    await s.append('s', Array.from({ length: 10 }, (_, i) => ev('E', { i })), { expectedVersion: 'no-stream' });
    const versions = async (options: Parameters<SqliteEventStore['readStream']>[1]) =>
      (await s.readStream('s', options).toArray()).map((e) => e.version);
    expect(await versions({})).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(await versions({ fromVersion: 4, toVersion: 8 })).toEqual([4, 5, 6, 7, 8]);
    expect(await versions({ fromVersion: 4, limit: 2 })).toEqual([4, 5]);
    expect(await versions({ backwards: true, limit: 4 })).toEqual([10, 9, 8, 7]);
    expect(await versions({ backwards: true, fromVersion: 5, toVersion: 2 })).toEqual([5, 4, 3, 2]);
    expect(await versions({ fromVersion: 11 })).toEqual([]);
    expect(await versions({ limit: 0 })).toEqual([]);
    const pages: number[][] = [];
    for await (const page of s.readStream('s').pages()) pages.push(page.map((e) => e.version));
    expect(pages).toEqual([[1, 2, 3], [4, 5, 6], [7, 8, 9], [10]]);
  });

  it('reports stored versions even when a hand-edited file has a gap in a stream', async () => {
    const s = store({ ...location(), pageSize: 2 });
    await s.append('s', Array.from({ length: 6 }, (_, i) => ev('E', { i })), { expectedVersion: 'no-stream' });
    s.transaction((db) => db.prepare('DELETE FROM eventfold_events WHERE stream_id = ? AND version = 3').run('s'));
    const read = await s.readStream('s').toArray();
    expect(read.map((e) => [e.version, (e.data as { i: number }).i])).toEqual([
      [1, 0],
      [2, 1],
      [4, 3],
      [5, 4],
      [6, 5],
    ]);
  });

  it('rejects reading a missing stream with StreamNotFoundError, also for empty ranges', async () => {
    const s = store(location());
    await s.append('exists', [ev('A')], { expectedVersion: 'any' });
    for (const options of [undefined, { limit: 0 }, { fromVersion: 5 }, { backwards: true }]) {
      const error = await errorOf(() => s.readStream('missing', options).toArray());
      expect(error).toMatchObject({ code: 'STREAM_NOT_FOUND', streamId: 'missing' });
    }
    expect(await s.readStream('exists', { fromVersion: 5 }).toArray()).toEqual([]);
  });

  it('after close every call rejects with StoreClosedError', async () => {
    const s = new SqliteEventStore(location());
    await s.append('s', [ev('A')], { expectedVersion: 'any' });
    const reader = s.readAll()[Symbol.asyncIterator]();
    await s.close();
    await s.close();
    const calls: Array<() => unknown> = [
      () => s.append('s', [ev('A')], { expectedVersion: 'any' }),
      () => s.appendMany([{ streamId: 's', events: [ev('A')], expectedVersion: 'any' }]),
      () => s.readStream('s').toArray(),
      () => s.readAll().toArray(),
      () => s.streamVersion('s'),
      () => s.headPosition(),
      () => reader.next(),
      () => s.transaction(() => 1),
      () => s.database,
    ];
    for (const call of calls) expect(await errorOf(call)).toMatchObject({ code: 'STORE_CLOSED' });
  });
});

describe('SqliteEventStore: reads agree with the in-memory store', () => {
  it('readStream and readAll return what InMemoryEventStore returns, for any range and page size', async () => {
    const rangeArb = fc.record(
      {
        fromVersion: fc.integer({ min: 0, max: 25 }),
        toVersion: fc.integer({ min: 0, max: 25 }),
        backwards: fc.boolean(),
        limit: fc.integer({ min: 0, max: 30 }),
      },
      { requiredKeys: [] },
    );
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.record({ stream: fc.constantFrom('a', 'b', 'c'), count: fc.integer({ min: 0, max: 6 }) }), {
          maxLength: 12,
        }),
        fc.integer({ min: 1, max: 7 }),
        fc.constantFrom('a', 'b', 'c'),
        rangeArb,
        fc.record({ fromPosition: fc.integer({ min: 0, max: 80 }), limit: fc.integer({ min: 0, max: 80 }) }, { requiredKeys: [] }),
        async (appends, pageSize, readStreamId, streamRange, logRange) => {
          const sqlite = new SqliteEventStore({ path: ':memory:', pageSize });
          const memory = new InMemoryEventStore({ pageSize });
          try {
            for (const [k, { stream, count }] of appends.entries()) {
              const events = Array.from({ length: count }, (_, i) => ev('E', { k, i }));
              await sqlite.append(stream, events, { expectedVersion: 'any' });
              await memory.append(stream, events, { expectedVersion: 'any' });
            }
            const shape = (e: RecordedEvent) => [e.streamId, e.version, e.position, e.type, e.data];
            const read = async (s: SqliteEventStore | InMemoryEventStore) => {
              try {
                return (await s.readStream(readStreamId, streamRange).toArray()).map(shape);
              } catch (error) {
                return (error as { code?: string }).code;
              }
            };
            expect(await read(sqlite)).toEqual(await read(memory));
            expect((await sqlite.readAll(logRange).toArray()).map(shape)).toEqual(
              (await memory.readAll(logRange).toArray()).map(shape),
            );
            expect(await sqlite.headPosition()).toBe(await memory.headPosition());
          } finally {
            await sqlite.close();
          }
        },
      ),
      { numRuns: 150 },
    );
  });
});

describe('SqliteEventStore: append hooks and transactions', () => {
  function withReadModel(s: SqliteEventStore): void {
    s.transaction((db) => db.exec('CREATE TABLE IF NOT EXISTS counts (stream_id TEXT PRIMARY KEY, n INTEGER NOT NULL)'));
  }

  it('runs hooks inside the write transaction: their writes commit with the events', async () => {
    const s = store({ path: freshFile() });
    withReadModel(s);
    const seen: Array<[string, number, number]> = [];
    const remove = s.addAppendHook((events, db) => {
      expect(db.inTransaction).toBe(true);
      for (const e of events) {
        seen.push([e.streamId, e.version, e.position]);
        db.prepare('INSERT INTO counts VALUES (?, 1) ON CONFLICT (stream_id) DO UPDATE SET n = n + 1').run(e.streamId);
      }
    });
    await s.appendMany([
      { streamId: 'a', events: [ev('A'), ev('B')], expectedVersion: 'no-stream' },
      { streamId: 'b', events: [ev('A')], expectedVersion: 'no-stream' },
    ]);
    expect(seen).toEqual([
      ['a', 1, 1],
      ['a', 2, 2],
      ['b', 1, 3],
    ]);
    expect(s.database.prepare('SELECT stream_id, n FROM counts ORDER BY stream_id').raw().all()).toEqual([
      ['a', 2],
      ['b', 1],
    ]);
    remove();
    await s.append('a', [ev('C')], { expectedVersion: 2 });
    expect(seen).toHaveLength(3);
  });

  it('a throwing hook aborts the append: no events and none of the hook writes', async () => {
    const s = store({ path: freshFile() });
    withReadModel(s);
    await s.append('a', [ev('A')], { expectedVersion: 'no-stream' });
    s.addAppendHook((events, db) => {
      db.prepare('INSERT INTO counts VALUES (?, 99)').run(events[0]!.streamId);
      if (events.some((e) => e.type === 'Poison')) throw new Error('read model refused');
    });
    const error = await errorOf(() =>
      s.appendMany([
        { streamId: 'b', events: [ev('Fine')], expectedVersion: 'no-stream' },
        { streamId: 'a', events: [ev('Poison')], expectedVersion: 1 },
      ]),
    );
    expect((error as Error).message).toBe('read model refused');
    expect(await s.headPosition()).toBe(1);
    expect(await s.streamVersion('b')).toBe(0);
    expect(s.database.prepare('SELECT count(*) FROM counts').pluck().get()).toBe(0);
    // The store stays usable and positions stay contiguous.
    const ok = await s.append('b', [ev('Fine')], { expectedVersion: 'no-stream' });
    expect(ok.position).toBe(2);
  });

  it('an async hook is refused and the append rolled back', async () => {
    const s = store({ path: ':memory:' });
    s.addAppendHook((async () => {}) as never);
    const error = await errorOf(() => s.append('a', [ev('A')], { expectedVersion: 'any' }));
    expect(error).toMatchObject({ code: 'INVALID_ARGUMENT' });
    expect(await s.headPosition()).toBe(0);
  });

  it('transaction() commits on return and rolls back on throw', async () => {
    const s = store({ path: freshFile() });
    withReadModel(s);
    expect(s.transaction((db) => db.prepare('INSERT INTO counts VALUES (?, ?)').run('x', 1).changes)).toBe(1);
    expect(() =>
      s.transaction((db) => {
        db.prepare('INSERT INTO counts VALUES (?, ?)').run('y', 1);
        throw new Error('nope');
      }),
    ).toThrow('nope');
    expect(s.database.prepare('SELECT stream_id FROM counts').pluck().all()).toEqual(['x']);
  });

  it('onAppended fires after commit with the last position, never for failed or empty appends', async () => {
    const s = store({ path: freshFile() });
    const positions: number[] = [];
    let visibleAtNotify = -1;
    const off = s.onAppended((last) => {
      positions.push(last);
      // Already committed: another connection sees it.
      const other = new Database(s.database.name, { readonly: true });
      visibleAtNotify = other.prepare('SELECT max(position) FROM eventfold_events').pluck().get() as number;
      other.close();
    });
    await s.append('a', [ev('A'), ev('B')], { expectedVersion: 'no-stream' });
    expect(visibleAtNotify).toBe(2);
    await errorOf(() => s.append('a', [ev('C')], { expectedVersion: 'no-stream' }));
    await s.appendMany([{ streamId: 'a', events: [], expectedVersion: 2 }]);
    await s.appendMany([
      { streamId: 'b', events: [ev('A')], expectedVersion: 'any' },
      { streamId: 'c', events: [ev('A'), ev('B')], expectedVersion: 'any' },
    ]);
    off();
    await s.append('a', [ev('D')], { expectedVersion: 2 });
    expect(positions).toEqual([2, 5]);
  });
});

describe('SqliteEventStore: files, durability and schema', () => {
  it('uses WAL and synchronous=FULL by default; synchronous and busy timeout are configurable', () => {
    const defaults = store({ path: freshFile() });
    expect(defaults.database.pragma('journal_mode', { simple: true })).toBe('wal');
    expect(defaults.database.pragma('synchronous', { simple: true })).toBe(2);
    expect(defaults.database.pragma('busy_timeout', { simple: true })).toBe(5000);
    const tuned = store({ path: freshFile(), synchronous: 'NORMAL', busyTimeout: 250 });
    expect(tuned.database.pragma('synchronous', { simple: true })).toBe(1);
    expect(tuned.database.pragma('busy_timeout', { simple: true })).toBe(250);
    const extra = store({ path: freshFile(), synchronous: 'EXTRA' });
    expect(extra.database.pragma('synchronous', { simple: true })).toBe(3);
  });

  it('refuses invalid options with InvalidArgumentError', () => {
    const bad: unknown[] = [
      { path: freshFile(), synchronous: 'FULL; DROP TABLE x' },
      { path: freshFile(), busyTimeout: -1 },
      { path: freshFile(), pageSize: 0 },
      { path: '' },
      {},
      { path: freshFile(), database: new Database(':memory:') },
      { path: freshFile(), limits: { maxEventBytes: 0 } },
    ];
    for (const options of bad) {
      expect(() => new SqliteEventStore(options as SqliteEventStoreOptions)).toThrow(
        expect.objectContaining({ code: 'INVALID_ARGUMENT' }),
      );
    }
  });

  it('a second store on the same file sees the history and continues versions and positions', async () => {
    const file = freshFile();
    const first = new SqliteEventStore({ path: file });
    await first.append('a', [ev('A'), ev('B')], { expectedVersion: 'no-stream' });
    await first.append('b', [ev('A')], { expectedVersion: 'no-stream' });
    await first.close();
    const second = store({ path: file });
    expect(await second.streamVersion('a')).toBe(2);
    expect(await second.headPosition()).toBe(3);
    const result = await second.append('a', [ev('C')], { expectedVersion: 2 });
    expect([result.version, result.position]).toEqual([3, 4]);
    expect((await second.readAll().toArray()).map((e) => `${e.streamId}@${e.version}#${e.position}`)).toEqual([
      'a@1#1',
      'a@2#2',
      'b@1#3',
      'a@3#4',
    ]);
  });

  it('two store instances on one file: concurrent appends with the same expected version have one winner', async () => {
    const file = freshFile();
    const one = store({ path: file });
    const two = store({ path: file });
    for (let round = 0; round < 20; round++) {
      const expected = round === 0 ? 'no-stream' : round;
      const outcomes = await Promise.allSettled([
        one.append('shared', [ev('ByOne', { round })], { expectedVersion: expected }),
        two.append('shared', [ev('ByTwo', { round })], { expectedVersion: expected }),
      ]);
      const won = outcomes.filter((o) => o.status === 'fulfilled');
      const lost = outcomes.filter((o): o is PromiseRejectedResult => o.status === 'rejected');
      expect(won).toHaveLength(1);
      expect(lost).toHaveLength(1);
      const code = round === 0 ? 'STREAM_ALREADY_EXISTS' : 'CONCURRENCY_CONFLICT';
      expect(lost[0]!.reason).toMatchObject({ code, actualVersion: round + 1 });
    }
    const events = await two.readStream('shared').toArray();
    expect(events.map((e) => e.version)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    expect(events.map((e) => (e.data as { round: number }).round)).toEqual(Array.from({ length: 20 }, (_, i) => i));
  });

  it('a writer that cannot get the lock in time fails with StoreTimeoutError (transient) and writes nothing', async () => {
    const file = freshFile();
    const s = store({ path: file, busyTimeout: 50 });
    const blocker = new Database(file);
    blocker.prepare('BEGIN IMMEDIATE').run();
    try {
      const error = await errorOf(() => s.append('a', [ev('A')], { expectedVersion: 'any' }));
      expect(error).toMatchObject({ code: 'STORE_TIMEOUT', transient: true });
    } finally {
      blocker.prepare('ROLLBACK').run();
      blocker.close();
    }
    expect(await s.headPosition()).toBe(0);
    expect((await s.append('a', [ev('A')], { expectedVersion: 'no-stream' })).position).toBe(1);
  });

  it('migrates a file of schema version 1 in place: the log is kept and filtered reads work', async () => {
    const file = freshFile();
    const raw = new Database(file);
    migrateSchema(raw, 'events', EVENT_MIGRATIONS.slice(0, 1));
    raw.prepare(
      `INSERT INTO eventfold_events (position, stream_id, version, type, data, metadata, event_id, recorded_at) VALUES (1, 'user-1', 1, 'A', '{}', NULL, '00000000-0000-4000-8000-000000000001', 0), (2, 'order-1', 1, 'B', '{}', NULL, '00000000-0000-4000-8000-000000000002', 0)`,
    ).run();
    raw.close();
    const s = new SqliteEventStore({ path: file });
    expect(schemaVersion(s.database, 'events')).toBe(EVENT_MIGRATIONS.length);
    expect((await s.readAll({ filter: { categories: ['order'] } }).toArray()).map((e) => e.position)).toEqual([2]);
    expect((await s.readAll({ filter: { types: ['A'] } }).toArray()).map((e) => e.streamId)).toEqual(['user-1']);
    await s.close();
  });

  it('records its schema version and refuses a file written by a newer schema', async () => {
    const file = freshFile();
    const s = new SqliteEventStore({ path: file });
    await s.append('a', [ev('A')], { expectedVersion: 'any' });
    expect(schemaVersion(s.database, 'events')).toBe(EVENT_MIGRATIONS.length);
    await s.close();
    const raw = new Database(file);
    raw.prepare(`UPDATE eventfold_schema SET version = 7 WHERE component = 'events'`).run();
    raw.close();
    const error = (() => {
      try {
        new SqliteEventStore({ path: file });
      } catch (e) {
        return e;
      }
      return undefined;
    })();
    expect(error).toBeInstanceOf(UnsupportedSchemaVersionError);
    expect(error).toMatchObject({ code: 'SCHEMA_VERSION_UNSUPPORTED', foundVersion: 7, supportedVersion: EVENT_MIGRATIONS.length });
    expect((error as Error).message).toContain(file);
    const check = new Database(file);
    expect(check.prepare('SELECT count(*) FROM eventfold_events').pluck().get()).toBe(1);
    check.close();
  });

  it('a passed-in database is shared, configured, and left open on close', async () => {
    const db = new Database(freshFile());
    const s = new SqliteEventStore({ database: db });
    expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
    expect(s.database).toBe(db);
    await s.append('a', [ev('A')], { expectedVersion: 'any' });
    await s.close();
    expect(db.open).toBe(true);
    expect(db.prepare('SELECT count(*) FROM eventfold_events').pluck().get()).toBe(1);
    db.close();
    const owned = new SqliteEventStore({ path: freshFile() });
    const ownedDb = owned.database;
    await owned.close();
    expect(ownedDb.open).toBe(false);
  });

  it('a database closed behind the store makes calls fail with StoreClosedError', async () => {
    const db = new Database(':memory:');
    const s = new SqliteEventStore({ database: db });
    db.close();
    expect(await errorOf(() => s.headPosition())).toMatchObject({ code: 'STORE_CLOSED' });
  });
});

describe('schema migrations', () => {
  const stepOne = { version: 1, description: 'one', up: (db: Database.Database) => db.exec('CREATE TABLE t (a INTEGER)') };
  const stepTwo = {
    version: 2,
    description: 'two',
    up: (db: Database.Database) => db.exec('ALTER TABLE t ADD COLUMN b INTEGER NOT NULL DEFAULT 7'),
  };

  it('runs only the missing steps, once, and records the version', () => {
    const db = new Database(freshFile());
    let runs = 0;
    const counted = { ...stepTwo, up: (d: Database.Database) => (runs++, stepTwo.up(d)) };
    expect(migrateSchema(db, 'demo', [stepOne])).toBe(1);
    db.prepare('INSERT INTO t (a) VALUES (1)').run();
    expect(migrateSchema(db, 'demo', [stepOne, counted])).toBe(2);
    expect(migrateSchema(db, 'demo', [stepOne, counted])).toBe(2);
    expect(runs).toBe(1);
    expect(db.prepare('SELECT a, b FROM t').raw().all()).toEqual([[1, 7]]);
    expect(schemaVersion(db, 'demo')).toBe(2);
    expect(() => migrateSchema(db, 'demo', [stepOne])).toThrow(UnsupportedSchemaVersionError);
    db.close();
  });

  it('a failing step rolls back the whole migration', () => {
    const db = new Database(':memory:');
    const broken = { version: 2, description: 'broken', up: (d: Database.Database) => d.exec('ALTER TABLE nope ADD c INTEGER') };
    expect(() => migrateSchema(db, 'demo', [stepOne, broken])).toThrow();
    expect(schemaVersion(db, 'demo')).toBe(0);
    expect(db.prepare(`SELECT count(*) FROM sqlite_schema WHERE name = 't'`).pluck().get()).toBe(0);
    db.close();
  });
});
