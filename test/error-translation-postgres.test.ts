/**
 * Driver failures of the PostgreSQL adapter, provoked on the real server, reach the caller as typed
 * eventfold errors with a stable code, the driver's error as `cause`, and the right `transient`
 * flag, from every public method of the event store, the snapshot store and the checkpoint store.
 */
import fc from 'fast-check';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { isEventfoldError, isTransientError, StoreTimeoutError } from '../src/index.js';
import { PostgresCheckpointStore, PostgresEventStore, PostgresSnapshotStore } from '../src/postgres/index.js';
import { translatePgError } from '../src/postgres/pg-errors.js';
import { DATABASE_URL, pgTestDatabase } from './support/postgres.js';
import { failure, type Failure } from './support/failure.js';

const db = pgTestDatabase({ max: 8 });
afterAll(() => db.cleanup());

const snapshot = (streamId: string) => ({ streamId, version: 1, schemaVersion: 1, state: { n: 1 }, takenAt: new Date(0) });
const checkpoint = { position: 1, version: 1 };

/** A migrated schema (events, snapshots, checkpoints) and stores on their own pool with `poolConfig`. */
async function stores(tag: string, poolConfig: pg.PoolConfig) {
  const schema = db.schema(tag);
  const admin = await PostgresEventStore.create({ pool: db.pool, schema });
  await new PostgresCheckpointStore(db.pool, schema).migrate();
  const app = `eventfold-${schema}`;
  const store = new PostgresEventStore({
    connectionString: DATABASE_URL,
    schema,
    poolConfig: { max: 4, application_name: app, ...poolConfig },
  });
  const snapshots = new PostgresSnapshotStore({ pool: store.pool, schema });
  const checkpoints = new PostgresCheckpointStore(store.pool, schema);
  return {
    schema,
    app,
    admin,
    store,
    snapshots,
    checkpoints,
    close: async () => {
      await store.close();
      await admin.close();
    },
  };
}

/** Holds ACCESS EXCLUSIVE locks on every table of `schema` until released. */
async function lockSchema(schema: string): Promise<() => Promise<void>> {
  const holder = await db.pool.connect();
  await holder.query('BEGIN');
  const { rows } = await holder.query<{ tablename: string }>('SELECT tablename FROM pg_tables WHERE schemaname = $1', [schema]);
  const tables = rows.map((r) => `"${schema}"."${r.tablename}"`).join(', ');
  await holder.query(`LOCK TABLE ${tables} IN ACCESS EXCLUSIVE MODE`);
  return async () => {
    await holder.query('ROLLBACK');
    holder.release();
  };
}

/** Every public call of the three stores that touches the database, by name. */
function publicCalls(s: Awaited<ReturnType<typeof stores>>): Array<[string, () => Promise<unknown>]> {
  return [
    ['append', () => s.store.append('s', [{ type: 'A', data: 1 }], { expectedVersion: 'any' })],
    ['appendMany', () => s.store.appendMany([{ streamId: 's', events: [{ type: 'A', data: 1 }], expectedVersion: 'any' }])],
    ['readStream', () => s.store.readStream('s').toArray()],
    ['readAll', () => s.store.readAll().toArray()],
    ['streamVersion', () => s.store.streamVersion('s')],
    ['headPosition', () => s.store.headPosition()],
    ['migrate', () => s.store.migrate()],
    ['withTransaction', () => s.store.withTransaction((client) => client.query(`SELECT count(*) FROM "${s.schema}".events`))],
    ['snapshots.save', () => s.snapshots.save(snapshot('s'))],
    ['snapshots.load', () => s.snapshots.load('s')],
    ['snapshots.migrate', () => s.snapshots.migrate()],
    ['checkpoints.load', () => s.checkpoints.load('p')],
    ['checkpoints.save', () => s.checkpoints.save('p', undefined, checkpoint)],
    ['checkpoints.delete', () => s.checkpoints.delete('p')],
    ['checkpoints.loadWith', () => s.checkpoints.loadWith(s.store.pool, 'p')],
  ];
}

function expectTyped(error: Failure, code: string, transient: boolean, driverCode: string, label: string): void {
  expect(isEventfoldError(error), `${label}: ${String(error)}`).toBe(true);
  expect(error.code, `${label}: ${error.message}`).toBe(code);
  expect(error.transient, label).toBe(transient);
  expect(isTransientError(error), label).toBe(transient);
  expect((error.cause as { code?: unknown } | undefined)?.code, label).toBe(driverCode);
  expect(error.driverCode, label).toBe(driverCode);
  expect(isEventfoldError(error.cause), `${label}: the cause is the driver's error`).toBe(false);
}

describe('PostgreSQL errors become typed eventfold errors', () => {
  it('a lock wait longer than lock_timeout: StoreTimeoutError (transient) from every public method, nothing written', async () => {
    const s = await stores('locktimeout', { lock_timeout: 200 });
    const release = await lockSchema(s.schema);
    try {
      for (const [label, call] of publicCalls(s)) {
        const error = await failure(call);
        expectTyped(error, 'STORE_TIMEOUT', true, '55P03', label);
        expect(error).toBeInstanceOf(StoreTimeoutError);
        expect(error.message).toContain('lock_timeout');
      }
    } finally {
      await release();
    }
    expect(await s.store.headPosition()).toBe(0);
    expect(await s.snapshots.load('s')).toBeUndefined();
    expect(await s.checkpoints.load('p')).toBeUndefined();
    // The same calls work once the lock is gone.
    expect((await s.store.append('s', [{ type: 'A', data: 1 }], { expectedVersion: 'no-stream' })).version).toBe(1);
    await s.close();
  });

  it('a statement longer than statement_timeout: StoreTimeoutError (transient)', async () => {
    const s = await stores('stmttimeout', { statement_timeout: 200 });
    const release = await lockSchema(s.schema);
    try {
      for (const [label, call] of publicCalls(s).filter(([name]) => ['append', 'readStream', 'snapshots.load', 'checkpoints.save'].includes(name))) {
        expectTyped(await failure(call), 'STORE_TIMEOUT', true, '57014', label);
      }
    } finally {
      await release();
    }
    s.store.addAppendHook(async (_events, client) => {
      await client.query('SELECT pg_sleep(5)');
    });
    const error = await failure(() => s.store.append('t', [{ type: 'A', data: 1 }], { expectedVersion: 'no-stream' }));
    expectTyped(error, 'STORE_TIMEOUT', true, '57014', 'append with a slow hook');
    expect(await s.admin.streamVersion('t')).toBe(0);
    await s.close();
  });

  it('a backend terminated while it waits: StoreUnavailableError (transient) from the stores and the checkpoint store', async () => {
    const s = await stores('terminated', { max: 8 });
    const release = await lockSchema(s.schema);
    try {
      const calls = publicCalls(s).filter(([name]) => ['append', 'readAll', 'snapshots.save', 'checkpoints.save', 'checkpoints.load'].includes(name));
      const pending = calls.map(([label, call]) => failure(call).then((error) => [label, error] as const));
      // Wait until every call is blocked on the lock, then kill those sessions.
      const deadline = Date.now() + 20_000;
      for (;;) {
        const { rows } = await db.pool.query<{ n: number }>(
          `SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = $1 AND wait_event_type = 'Lock'`,
          [s.app],
        );
        if (rows[0]!.n >= calls.length) break;
        if (Date.now() > deadline) throw new Error(`only ${rows[0]!.n} of ${calls.length} calls reached the lock`);
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      await db.pool.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1', [s.app]);
      for (const [label, error] of await Promise.all(pending)) {
        expectTyped(error, 'STORE_UNAVAILABLE', true, '57P01', label);
      }
    } finally {
      await release();
    }
    expect(await s.store.headPosition()).toBe(0);
    await s.close();
  });

  it('a read-only database: StoreReadOnlyError (not transient) from every write; reads still work', async () => {
    const s = await stores('readonly', { options: '-c default_transaction_read_only=on' });
    const writes = publicCalls(s).filter(([name]) => ['append', 'appendMany', 'snapshots.save', 'checkpoints.save', 'checkpoints.delete'].includes(name));
    writes.push(['withTransaction', () => s.store.withTransaction((c) => c.query(`DELETE FROM "${s.schema}".snapshots`))]);
    for (const [label, call] of writes) {
      const error = await failure(call);
      expectTyped(error, 'STORE_READ_ONLY', false, '25006', label);
      expect(error.message).toMatch(/read-only/);
    }
    expect(await s.store.headPosition()).toBe(0);
    expect(await s.checkpoints.loadWith(s.store.pool, 'p')).toBeUndefined();
    await s.close();
  });

  it('a deadlock between two transactions: TransactionConflictError (transient) for the victim', async () => {
    const s = await stores('deadlock', {});
    await s.admin.withTransaction(async (c) => {
      await c.query(`CREATE TABLE "${s.schema}".side (id int PRIMARY KEY, n int)`);
      await c.query(`INSERT INTO "${s.schema}".side VALUES (1, 0), (2, 0)`);
    });
    let bothLocked!: () => void;
    let count = 0;
    const barrier = new Promise<void>((resolve) => (bothLocked = resolve));
    const cross = (first: number, second: number) =>
      s.store.withTransaction(async (c) => {
        await c.query(`UPDATE "${s.schema}".side SET n = n + 1 WHERE id = $1`, [first]);
        if (++count === 2) bothLocked();
        await barrier;
        await c.query(`UPDATE "${s.schema}".side SET n = n + 1 WHERE id = $1`, [second]);
      });
    const outcomes = await Promise.allSettled([cross(1, 2), cross(2, 1)]);
    const rejected = outcomes.filter((o): o is PromiseRejectedResult => o.status === 'rejected');
    expect(rejected).toHaveLength(1);
    expectTyped(rejected[0]!.reason as Failure, 'TRANSACTION_CONFLICT', true, '40P01', 'deadlock victim');
    await s.close();
  });

  it('a serialization failure: TransactionConflictError (transient)', async () => {
    const s = await stores('serial', {});
    await s.admin.withTransaction((c) => c.query(`CREATE TABLE "${s.schema}".side (n int)`));
    let read = 0;
    let bothRead!: () => void;
    const barrier = new Promise<void>((resolve) => (bothRead = resolve));
    const writeSum = () =>
      s.store.withTransaction(async (c) => {
        await c.query('SET TRANSACTION ISOLATION LEVEL SERIALIZABLE');
        const { rows } = await c.query<{ n: number }>(`SELECT count(*)::int AS n FROM "${s.schema}".side`);
        if (++read === 2) bothRead();
        await barrier;
        await c.query(`INSERT INTO "${s.schema}".side VALUES ($1)`, [rows[0]!.n]);
      });
    const outcomes = await Promise.allSettled([writeSum(), writeSum()]);
    const rejected = outcomes.filter((o): o is PromiseRejectedResult => o.status === 'rejected');
    expect(rejected).toHaveLength(1);
    expectTyped(rejected[0]!.reason as Failure, 'TRANSACTION_CONFLICT', true, '40001', 'serialization failure');
    await s.close();
  });

  it('a schema that was never migrated: SchemaNotMigratedError (not transient, says migrate()) from all three stores', async () => {
    const schema = db.schema('nomigrate');
    const store = new PostgresEventStore({ pool: db.pool, schema });
    const snapshots = new PostgresSnapshotStore({ pool: db.pool, schema });
    const checkpoints = new PostgresCheckpointStore(db.pool, schema);
    const calls: Array<[string, () => Promise<unknown>]> = [
      ['append', () => store.append('s', [{ type: 'A', data: 1 }], { expectedVersion: 'any' })],
      ['readStream', () => store.readStream('s').toArray()],
      ['headPosition', () => store.headPosition()],
      ['snapshots.load', () => snapshots.load('s')],
      ['snapshots.save', () => snapshots.save(snapshot('s'))],
      ['checkpoints.loadWith', () => checkpoints.loadWith(db.pool, 'p')],
    ];
    for (const [label, call] of calls) {
      const error = await failure(call);
      expect(error.code, `${label}: ${error.message}`).toBe('SCHEMA_NOT_MIGRATED');
      expect(isTransientError(error), label).toBe(false);
      expect(error.message, label).toContain('migrate()');
    }
  });

  it("a missing table of the caller's own (in a hook) is a StoreFailureError, not SCHEMA_NOT_MIGRATED", async () => {
    const s = await stores('hooktable', {});
    s.store.addAppendHook(async (_events, client) => {
      await client.query('INSERT INTO public.eventfold_no_such_table VALUES (1)');
    });
    const error = await failure(() => s.store.append('s', [{ type: 'A', data: 1 }], { expectedVersion: 'any' }));
    expectTyped(error, 'STORE_FAILURE', false, '42P01', 'hook');
    expect(error.message).toContain('eventfold_no_such_table');
    await s.close();
  });

  it('an ended pool passed in: StoreClosedError', async () => {
    const schema = db.schema('ended');
    await PostgresEventStore.create({ pool: db.pool, schema });
    const pool = new pg.Pool({ connectionString: DATABASE_URL, max: 1 });
    const store = new PostgresEventStore({ pool, schema });
    await pool.end();
    const error = await failure(() => store.headPosition());
    expect(error.code).toBe('STORE_CLOSED');
    expect(isTransientError(error)).toBe(false);
  });

  it('codes the tests cannot provoke on a healthy server map by SQLSTATE (real pg DatabaseError objects)', () => {
    const table: Array<[string, string, boolean]> = [
      ['53100', 'STORAGE_FULL', true],
      ['53200', 'STORE_UNAVAILABLE', true],
      ['53300', 'STORE_UNAVAILABLE', true],
      ['58030', 'STORE_UNAVAILABLE', true],
      ['57P03', 'STORE_UNAVAILABLE', true],
      ['08006', 'STORE_UNAVAILABLE', true],
      ['25P03', 'STORE_UNAVAILABLE', true],
      ['40003', 'STORE_UNAVAILABLE', true],
      ['XX001', 'STORE_CORRUPT', false],
      ['XX002', 'STORE_CORRUPT', false],
      ['42501', 'STORE_FAILURE', false],
    ];
    for (const [sqlState, code, transient] of table) {
      const driverError = Object.assign(new pg.DatabaseError(`server said ${sqlState}`, 0, 'error'), { code: sqlState, severity: 'ERROR' });
      const translated = translatePgError(driverError, 'append events', 'eventfold', true) as Failure;
      expect(translated.code, sqlState).toBe(code);
      expect(translated.transient, sqlState).toBe(transient);
      expect(translated.cause).toBe(driverError);
    }
    const plain = new Error('a hook gave up');
    expect(translatePgError(plain, 'append events', 'eventfold', true)).toBe(plain);
  });
});

describe('translatePgError (property)', () => {
  it('every server error (any SQLSTATE but the store\'s own EF001) becomes an eventfold error with the driver error as cause', () => {
    const sqlState = fc.stringMatching(/^[0-9A-Z]{5}$/).filter((code) => code !== 'EF001');
    fc.assert(
      fc.property(sqlState, fc.string(), fc.boolean(), (code, message, write) => {
        const driverError = Object.assign(new pg.DatabaseError(message, 0, 'error'), { code, severity: 'ERROR' });
        const translated = translatePgError(driverError, 'append events', 'eventfold', write) as Failure;
        expect(isEventfoldError(translated), code).toBe(true);
        expect(translated.cause).toBe(driverError);
        expect(typeof translated.transient).toBe('boolean');
      }),
      { numRuns: 500 },
    );
  });
});

describe('isEventfoldError recognises only eventfold errors', () => {
  it('is false for driver and system errors that carry a string code', async () => {
    const sqlError = await failure(() => db.pool.query('SELECT 1/0'));
    expect(sqlError.code).toBe('22012');
    expect(isEventfoldError(sqlError)).toBe(false);
    expect(isEventfoldError(sqlError, '22012')).toBe(false);
    const client = new pg.Client({ connectionString: 'postgres://postgres@127.0.0.1:1/postgres', connectionTimeoutMillis: 2000 });
    const refused = await failure(() => client.connect());
    expect(refused.code).toBe('ECONNREFUSED');
    expect(isEventfoldError(refused)).toBe(false);
    expect(isEventfoldError(Object.assign(new Error('timeout'), { code: '55P03' }))).toBe(false);
    expect(isTransientError(refused)).toBe(false);
  });

  it('is true for an error of another copy of the package (same Symbol.for brand)', () => {
    // What a second install's EventfoldError looks like: another class, the same global symbol.
    class OtherCopyError extends Error {
      readonly code = 'STORE_TIMEOUT';
      readonly transient = true;
    }
    Object.defineProperty(OtherCopyError.prototype, Symbol.for('eventfold.error'), { value: true });
    const foreign = new OtherCopyError('lock wait');
    expect(isEventfoldError(foreign)).toBe(true);
    expect(isEventfoldError(foreign, 'STORE_TIMEOUT')).toBe(true);
    expect(isTransientError(foreign)).toBe(true);
    expect(new StoreTimeoutError('x') instanceof OtherCopyError).toBe(false);
  });
});
