/**
 * The error contract of the core: every error is an `EventfoldError` with a stable code and a
 * documented `transient` flag; creating what exists is its own conflict; data too deep, stream
 * ids with invisible characters and events of another stream are refused with typed errors.
 */
import Database from 'better-sqlite3';
import fc from 'fast-check';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import {
  Aggregate,
  AggregateAlreadyExistsError,
  AggregateNotFoundError,
  BatchTooLargeError,
  BrokerUnavailableError,
  CapabilityNotSupportedError,
  ConcurrencyError,
  DuplicateHandlerError,
  EventOutOfOrderError,
  EventStreamMismatchError,
  expectedVersionConflict,
  HandlerNotFoundError,
  InMemoryEventStore,
  InMemorySnapshotStore,
  InvalidArgumentError,
  InvalidEventError,
  InvalidOperationError,
  InvalidStreamIdError,
  isConcurrencyError,
  isEventfoldError,
  isTransientError,
  MessageRefusedError,
  Repository,
  SchemaNotMigratedError,
  StorageFullError,
  StoreClosedError,
  StoreCorruptError,
  StoreFailureError,
  StoreReadOnlyError,
  StoreTimeoutError,
  StoreUnavailableError,
  StreamAlreadyExistsError,
  StreamNotFoundError,
  TransactionConflictError,
  UnitOfWork,
  UnsupportedSchemaVersionError,
  type Event,
  type EventStore,
  type RecordedEvent,
} from '../src/index.js';
import { deepFreezeJson, MAX_JSON_DEPTH, prepareEvents } from '../src/events/validation.js';
import { classifyPgError, PostgresEventStore } from '../src/postgres/index.js';
import { classifySqliteError, SqliteEventStore } from '../src/sqlite/index.js';
import { pgTestDatabase } from './support/postgres.js';
import { failure } from './support/failure.js';

const db = pgTestDatabase({ max: 4 });
afterAll(() => db.cleanup());

describe('error classes', () => {
  const cause = Object.assign(new Error('driver'), { code: 'X1' });
  const table: Array<[Error, string, boolean]> = [
    [new ConcurrencyError('s', 1, 2), 'CONCURRENCY_CONFLICT', false],
    [new StreamAlreadyExistsError('s', 'no-stream', 2), 'STREAM_ALREADY_EXISTS', false],
    [new AggregateAlreadyExistsError('1', 'user-1', 'no-stream', 2), 'AGGREGATE_ALREADY_EXISTS', false],
    [new StreamNotFoundError('s'), 'STREAM_NOT_FOUND', false],
    [new AggregateNotFoundError('1', 'user-1'), 'AGGREGATE_NOT_FOUND', false],
    [new InvalidEventError('bad'), 'INVALID_EVENT', false],
    [new BatchTooLargeError('big', 1, 2), 'BATCH_TOO_LARGE', false],
    [new InvalidStreamIdError('', 'empty'), 'INVALID_STREAM_ID', false],
    [new InvalidArgumentError('bad'), 'INVALID_ARGUMENT', false],
    [new StoreClosedError(), 'STORE_CLOSED', false],
    [new CapabilityNotSupportedError('x', 'no'), 'CAPABILITY_NOT_SUPPORTED', false],
    [new StoreUnavailableError('down', { cause }), 'STORE_UNAVAILABLE', true],
    [new StoreTimeoutError('slow', { cause }), 'STORE_TIMEOUT', true],
    [new TransactionConflictError('again', { cause }), 'TRANSACTION_CONFLICT', true],
    [new StorageFullError('full', { cause }), 'STORAGE_FULL', true],
    [new StoreReadOnlyError('ro', { cause }), 'STORE_READ_ONLY', false],
    [new StoreCorruptError('bad', { cause }), 'STORE_CORRUPT', false],
    [new SchemaNotMigratedError('migrate', { cause }), 'SCHEMA_NOT_MIGRATED', false],
    [new StoreFailureError('other', { cause }), 'STORE_FAILURE', false],
    [new UnsupportedSchemaVersionError('events', 9, 1, "PostgreSQL schema 'x'"), 'SCHEMA_VERSION_UNSUPPORTED', false],
    [new EventOutOfOrderError('1', 2, 3), 'EVENT_OUT_OF_ORDER', false],
    [new EventStreamMismatchError('1', 'a', 'b', 1), 'EVENT_STREAM_MISMATCH', false],
    [new InvalidOperationError('rule'), 'INVALID_OPERATION', false],
    [new HandlerNotFoundError('command', 'X'), 'HANDLER_NOT_FOUND', false],
    [new BrokerUnavailableError('broker', 'down'), 'BROKER_UNAVAILABLE', true],
    [new MessageRefusedError('broker', ['e1'], 'unroutable'), 'MESSAGE_REFUSED', false],
    [new DuplicateHandlerError('command', 'X'), 'DUPLICATE_HANDLER', false],
  ];

  it.each(table)('%s has its code and transient flag', (error, code, transient) => {
    expect(isEventfoldError(error)).toBe(true);
    expect(isEventfoldError(error, code)).toBe(true);
    expect((error as unknown as { code: string }).code).toBe(code);
    expect(isTransientError(error)).toBe(transient);
    expect(error.name).toBe(error.constructor.name);
  });

  it('store errors keep the driver error as cause and its code as driverCode', () => {
    const error = new StoreTimeoutError('slow', { cause });
    expect(error.cause).toBe(cause);
    expect(error.driverCode).toBe('X1');
  });

  it('isTransientError and isEventfoldError ignore look-alikes that are not eventfold errors', () => {
    const lookalike = Object.assign(new Error('x'), { code: 'STORE_TIMEOUT', transient: true });
    expect(isEventfoldError(lookalike)).toBe(false);
    expect(isTransientError(lookalike)).toBe(false);
    expect(isEventfoldError({ code: 'CONCURRENCY_CONFLICT' })).toBe(false);
    expect(isEventfoldError(null)).toBe(false);
    expect(isEventfoldError('STORE_TIMEOUT')).toBe(false);
  });

  it('isTransientError follows the cause chain from the inside out; an adapter classifier judges raw driver errors', () => {
    const lost = new StoreUnavailableError('connection lost', { cause: Object.assign(new Error('x'), { code: '57P01' }) });
    const wrapped = new Error('handler failed', { cause: lost });
    expect(isTransientError(wrapped)).toBe(true);
    expect(isTransientError(new Error('handler failed', { cause: new InvalidArgumentError('bad') }))).toBe(false);
    const lockTimeout = Object.assign(new pg.DatabaseError('canceling statement due to lock timeout', 0, 'error'), { code: '55P03', severity: 'ERROR' });
    expect(isTransientError(lockTimeout)).toBe(false);
    expect(isTransientError(lockTimeout, classifyPgError)).toBe(true);
    const readOnly = Object.assign(new pg.DatabaseError('read-only', 0, 'error'), { code: '25006', severity: 'ERROR' });
    expect(isTransientError(new StoreUnavailableError('x', { cause: readOnly }), classifyPgError)).toBe(false);
    expect(isTransientError(new Database.SqliteError('database is locked', 'SQLITE_BUSY'), classifySqliteError)).toBe(true);
    expect(isTransientError(new Database.SqliteError('readonly', 'SQLITE_READONLY'), classifySqliteError)).toBe(false);
    const cyclic: Error & { cause?: unknown } = new Error('loop');
    cyclic.cause = cyclic;
    expect(isTransientError(cyclic)).toBe(false);
  });

  it('the concurrency family: isConcurrencyError, instanceof, and which check makes which', () => {
    expect(expectedVersionConflict('s', 'no-stream', 3)).toBeInstanceOf(StreamAlreadyExistsError);
    expect(expectedVersionConflict('s', 0, 3)).toBeInstanceOf(StreamAlreadyExistsError);
    for (const [expected, actual] of [[2, 3], ['stream-exists', 0], [1, 0]] as const) {
      const error = expectedVersionConflict('s', expected, actual);
      expect(error.code).toBe('CONCURRENCY_CONFLICT');
      expect(error).not.toBeInstanceOf(StreamAlreadyExistsError);
    }
    const exists = new AggregateAlreadyExistsError('1', 'user-1', 'no-stream', 2);
    expect(exists).toBeInstanceOf(StreamAlreadyExistsError);
    expect(exists).toBeInstanceOf(ConcurrencyError);
    expect(isConcurrencyError(exists)).toBe(true);
    expect(isConcurrencyError(new ConcurrencyError('s', 1, 2))).toBe(true);
    expect(isConcurrencyError(new StoreTimeoutError('x'))).toBe(false);
    expect(exists.message).toContain('already exists');
    expect(exists.message).not.toMatch(/reload/i);
  });
});

type Registered = Event<'Registered', { name: string }>;
type Renamed = Event<'Renamed', { name: string }>;
type UserEvent = Registered | Renamed;

class User extends Aggregate<UserEvent> {
  name = '';
  register(name: string): void {
    this.raise('Registered', { name });
  }
  protected apply(event: UserEvent): void {
    this.name = event.data.name;
  }
}

const storeKinds: Array<[string, () => Promise<EventStore>]> = [
  ['in-memory', async () => new InMemoryEventStore()],
  ['SQLite', async () => new SqliteEventStore({ path: ':memory:' })],
  ['PostgreSQL', async () => PostgresEventStore.create({ pool: db.pool, schema: db.schema('codes') })],
];

describe.each(storeKinds)('creating what exists (%s)', (_label, open) => {
  it("an append with 'no-stream' or 0 on an existing stream: StreamAlreadyExistsError, nothing written", async () => {
    const store = await open();
    await store.append('user-1', [{ type: 'Registered', data: { name: 'ann' } }], { expectedVersion: 'no-stream' });
    for (const expectedVersion of ['no-stream', 0] as const) {
      const error = await failure(() => store.append('user-1', [{ type: 'Registered', data: { name: 'bob' } }], { expectedVersion }));
      expect(error).toBeInstanceOf(StreamAlreadyExistsError);
      expect(error).toMatchObject({ code: 'STREAM_ALREADY_EXISTS', streamId: 'user-1', expectedVersion, actualVersion: 1 });
      expect(error.message).toContain('already exists');
      const many = await failure(() =>
        store.appendMany([
          { streamId: 'user-2', events: [{ type: 'Registered', data: { name: 'bob' } }], expectedVersion: 'no-stream' },
          { streamId: 'user-1', events: [{ type: 'Registered', data: { name: 'bob' } }], expectedVersion },
        ]),
      );
      expect(many).toMatchObject({ code: 'STREAM_ALREADY_EXISTS', streamId: 'user-1' });
    }
    expect(await store.headPosition()).toBe(1);
    await store.close();
  });

  it('Repository.save of a new aggregate whose stream exists: AggregateAlreadyExistsError, not a retry hint', async () => {
    const store = await open();
    const users = new Repository(store, User, { streamPrefix: 'user' });
    const first = new User('7');
    first.register('ann');
    await users.save(first);
    const twin = new User('7');
    twin.register('bob');
    const error = await failure(() => users.save(twin));
    expect(error).toBeInstanceOf(AggregateAlreadyExistsError);
    expect(error).toMatchObject({ code: 'AGGREGATE_ALREADY_EXISTS', aggregateId: '7', streamId: 'user-7', actualVersion: 1 });
    expect(error.message).toContain("Aggregate '7' already exists");
    expect(error.message).not.toMatch(/reload/i);
    expect(isConcurrencyError(error)).toBe(true);
    expect(twin.uncommittedEvents).toHaveLength(1);
    expect((await users.load('7')).name).toBe('ann');
    await store.close();
  });
});

describe('creating what exists in a UnitOfWork', () => {
  it('a new aggregate whose stream exists: AggregateAlreadyExistsError naming it; a pure check stays a StreamAlreadyExistsError', async () => {
    const store = new InMemoryEventStore();
    const users = new Repository(store, User, { streamPrefix: 'user' });
    const first = new User('7');
    first.register('ann');
    await users.save(first);
    const twin = new User('7');
    twin.register('bob');
    const other = new User('8');
    other.register('cy');
    const error = await failure(() => new UnitOfWork(store).add(users, other).add(users, twin).commit());
    expect(error).toBeInstanceOf(AggregateAlreadyExistsError);
    expect(error).toMatchObject({ code: 'AGGREGATE_ALREADY_EXISTS', aggregateId: '7', streamId: 'user-7' });
    expect(await store.streamVersion('user-8')).toBe(0);
    const check = await failure(() => new UnitOfWork(store).add(users, other).expect('user-7', 'no-stream').commit());
    expect(check).toMatchObject({ code: 'STREAM_ALREADY_EXISTS', streamId: 'user-7' });
  });
});

/** `depth` arrays nested in one another around a number. */
function nested(depth: number): unknown {
  let value: unknown = 1;
  for (let i = 0; i < depth; i++) value = [value];
  return value;
}

describe('nesting depth', () => {
  it(`data nested deeper than MAX_JSON_DEPTH (${MAX_JSON_DEPTH}) is an InvalidEventError, however deep`, () => {
    for (const depth of [MAX_JSON_DEPTH + 1, 5_000, 100_000]) {
      for (const event of [
        { type: 'Deep', data: nested(depth) },
        { type: 'Deep', data: { ok: true }, metadata: { trace: nested(depth) } },
      ]) {
        let error: unknown;
        try {
          prepareEvents('s', [event]);
        } catch (e) {
          error = e;
        }
        expect(error).toBeInstanceOf(InvalidEventError);
        expect((error as Error).message).toContain(`deeper than ${MAX_JSON_DEPTH} levels`);
      }
    }
    expect(MAX_JSON_DEPTH).toBe(256);
  });

  it.each(storeKinds)('%s: the limit itself is accepted and reads back; one more level is refused with nothing written', async (_label, open) => {
    const store = await open();
    // The top-level value is depth 0, so MAX_JSON_DEPTH arrays put the number at depth MAX_JSON_DEPTH.
    const atLimit = { type: 'Deep', data: nested(MAX_JSON_DEPTH) };
    await store.append('deep', [atLimit], { expectedVersion: 'no-stream' });
    const [read] = await store.readStream('deep').toArray();
    expect(read!.data).toEqual(atLimit.data);
    const error = await failure(() => store.append('deep', [{ type: 'Deep', data: { a: nested(MAX_JSON_DEPTH) } }], { expectedVersion: 1 }));
    expect(error).toBeInstanceOf(InvalidEventError);
    expect(await store.streamVersion('deep')).toBe(1);
    await store.close();
  });

  it('a snapshot state too deep to serialise is an InvalidArgumentError, not a RangeError', async () => {
    const snapshots = new InMemorySnapshotStore();
    const error = await failure(() =>
      snapshots.save({ streamId: 's', version: 1, schemaVersion: 1, state: nested(100_000) as never, takenAt: new Date(0) }),
    );
    expect(error).toBeInstanceOf(InvalidArgumentError);
  });

  it('deepFreezeJson freezes parsed JSON of any depth without recursing', () => {
    const parsed = JSON.parse('['.repeat(100_000) + ']'.repeat(100_000)) as unknown[];
    expect(deepFreezeJson(parsed)).toBe(parsed);
    let inner: unknown = parsed;
    for (let i = 0; i < 99_999; i++) inner = (inner as unknown[])[0];
    expect(Object.isFrozen(inner)).toBe(true);
  });
});

describe('stream ids are readable in logs', () => {
  const forbidden = [
    ...['\u0000', '\u001b', '\u007f', '\u0080', '\u0085', '\u009b', '\u009f'],
    ...['\u200e', '\u200f', '\u061c', '\u202a', '\u202b', '\u202c', '\u202d', '\u202e', '\u2066', '\u2067', '\u2068', '\u2069'],
    ...['\u200b', '\u200c', '\u200d', '\u2060', '\ufeff', '\u00ad', '\u2028', '\u2029', '\u{e0041}'],
  ];

  it('refuses any id with a control, bidi or invisible format character anywhere in it', async () => {
    const store = new InMemoryEventStore();
    await fc.assert(
      fc.asyncProperty(
        fc.string({ unit: fc.constantFrom(...'abcxyz-_:0123456789éß漢'.split('')), minLength: 1, maxLength: 30 }),
        fc.constantFrom(...forbidden),
        fc.nat(),
        async (base, bad, at) => {
          const position = at % (base.length + 1);
          const id = base.slice(0, position) + bad + base.slice(position);
          const error = await failure(() => store.append(id, [{ type: 'A', data: 1 }], { expectedVersion: 'any' }));
          expect(error).toBeInstanceOf(InvalidStreamIdError);
          expect(isEventfoldError(error, 'INVALID_STREAM_ID')).toBe(true);
          await expect(store.streamVersion(id)).rejects.toBeInstanceOf(InvalidStreamIdError);
        },
      ),
      { numRuns: 300 },
    );
    expect(await store.headPosition()).toBe(0);
  });

  it('accepts ids made of visible characters (letters of any script, digits, punctuation, emoji)', async () => {
    const store = new InMemoryEventStore();
    for (const id of ['user-42', 'Bestellung-ä', 'заказ:7', '注文_8', 'order 9', 'team-😀', 'a\u00a0b']) {
      expect((await store.append(id, [{ type: 'A', data: 1 }], { expectedVersion: 'no-stream' })).version).toBe(1);
    }
  });
});

describe('Aggregate.fromEvents', () => {
  const recorded = (streamId: string, version: number, name: string): RecordedEvent<UserEvent> =>
    Object.freeze({
      streamId,
      version,
      position: version,
      eventId: `${streamId}-${version}`,
      type: 'Renamed',
      data: { name },
      metadata: {},
      recordedAt: new Date(0),
    }) as RecordedEvent<UserEvent>;

  it('refuses events of another stream with EventStreamMismatchError, applying none of them', () => {
    let error: unknown;
    try {
      User.fromEvents('1', [recorded('user-1', 1, 'ann'), recorded('user-2', 2, 'eve')]);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(EventStreamMismatchError);
    expect(error).toMatchObject({
      code: 'EVENT_STREAM_MISMATCH',
      aggregateId: '1',
      expectedStreamId: 'user-1',
      eventStreamId: 'user-2',
      eventVersion: 2,
    });
  });

  it('a later replay must stay on the stream the aggregate was built from', () => {
    const user = User.fromEvents('1', [recorded('user-1', 1, 'ann')]);
    expect(user.name).toBe('ann');
    expect(() => User.fromEvents('1', [recorded('user-1', 1, 'ann'), recorded('user-1', 2, 'bo')]).name).not.toThrow();
    const generator = function* () {
      yield recorded('user-1', 1, 'ann');
      yield recorded('other', 2, 'eve');
    };
    expect(() => User.fromEvents('1', generator())).toThrow(EventStreamMismatchError);
  });
});
