import Database from 'better-sqlite3';
import fc from 'fast-check';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { ConsumerLoop, type ConsumerErrorInfo, type ConsumerWorker } from '../src/consumers/consumer-loop.js';
import type { ConsumerLease, ConsumerLock } from '../src/consumers/lock.js';
import { backoffDelay, resolveRetryPolicy } from '../src/consumers/retry.js';
import { isTransientError } from '../src/consumers/transient.js';
import { WakeUpChannel } from '../src/consumers/wake-up-channel.js';
import { InvalidArgumentError, StoreClosedError, StoreUnavailableError } from '../src/errors.js';
import { classifyPgError } from '../src/postgres/pg-transient.js';
import { ProjectionHandlerError } from '../src/projections/errors.js';
import { InMemoryCheckpointStore, InMemoryDeadLetterStore, readProjectionStatus } from '../src/projections/index.js';
import { classifySqliteError } from '../src/sqlite/sqlite-transient.js';
import { InMemoryEventStore } from '../src/store/in-memory-event-store.js';

const policyArb = fc.record({
  maxAttempts: fc.integer({ min: 1, max: 100 }),
  initialDelayMs: fc.integer({ min: 0, max: 10_000 }),
  maxDelayMs: fc.integer({ min: 0, max: 60_000 }),
  factor: fc.double({ min: 1, max: 10, noNaN: true }),
  jitter: fc.double({ min: 0, max: 1, noNaN: true }),
});

/** A driver error as pg raises it (a `DatabaseError` carrying a SQLSTATE, or a socket error). */
function pgError(code: string, message = `pg error ${code}`): Error {
  if (/^[0-9A-Z]{5}$/.test(code)) return Object.assign(new pg.DatabaseError(message, message.length, 'error'), { code, severity: 'ERROR' });
  return Object.assign(new Error(message), { code });
}

describe('retry policy', () => {
  it('property: a backoff delay is never above the cap nor below its non-random share, whatever the attempt', () => {
    fc.assert(
      fc.property(policyArb, fc.integer({ min: 1, max: 100_000 }), fc.double({ min: 0, max: 1, noNaN: true }), (raw, attempt, r) => {
        const policy = resolveRetryPolicy(raw);
        const grown = policy.initialDelayMs === 0 ? 0 : policy.initialDelayMs * policy.factor ** Math.min(attempt - 1, 1_000);
        const capped = Math.min(policy.maxDelayMs, grown);
        expect(Number.isFinite(backoffDelay(policy, attempt))).toBe(true);
        const delay = backoffDelay(policy, attempt, () => r);
        expect(delay).toBeGreaterThanOrEqual(0);
        expect(delay).toBeLessThanOrEqual(policy.maxDelayMs + 1e-9);
        // Relative tolerance: the policy and this check compute the same power in different orders.
        const slack = 1e-6 * Math.max(1, capped);
        expect(delay).toBeGreaterThanOrEqual(capped * (1 - policy.jitter) - slack);
        expect(delay).toBeLessThanOrEqual(capped + slack);
      }),
    );
  });

  it('without jitter the delay doubles from initialDelayMs up to maxDelayMs', () => {
    const policy = resolveRetryPolicy({ initialDelayMs: 100, maxDelayMs: 1_000, factor: 2, jitter: 0 });
    expect([1, 2, 3, 4, 5, 6].map((a) => backoffDelay(policy, a))).toEqual([100, 200, 400, 800, 1_000, 1_000]);
  });

  it('refuses nonsense and accepts Infinity attempts', () => {
    expect(() => resolveRetryPolicy({ maxAttempts: 0 })).toThrow(InvalidArgumentError);
    expect(() => resolveRetryPolicy({ jitter: 2 })).toThrow(/jitter/);
    expect(() => resolveRetryPolicy({ factor: 0.5 })).toThrow(/factor/);
    expect(resolveRetryPolicy({ maxAttempts: Infinity }).maxAttempts).toBe(Infinity);
  });
});

describe('isTransientError', () => {
  it('judges driver errors through the adapter classifiers and eventfold errors by code', () => {
    const dropped = pgError('57P01', 'terminating connection due to administrator command');
    expect(isTransientError(dropped, classifyPgError)).toBe(true);
    expect(isTransientError(new StoreUnavailableError('lost', { cause: dropped }), classifyPgError)).toBe(true);
    expect(isTransientError(pgError('ECONNREFUSED', 'connect ECONNREFUSED 127.0.0.1:1'), classifyPgError)).toBe(true);
    expect(isTransientError(pgError('40001'), classifyPgError)).toBe(true);
    expect(isTransientError(pgError('53300'), classifyPgError)).toBe(true);
    // A missing table is reported as unavailable, but no retry creates it.
    expect(isTransientError(new StoreUnavailableError('missing', { cause: pgError('42P01') }), classifyPgError)).toBe(false);
    expect(isTransientError(pgError('23505'), classifyPgError)).toBe(false);
    expect(isTransientError(new StoreClosedError())).toBe(false);
    expect(isTransientError(new InvalidArgumentError('bad'))).toBe(false);
    expect(isTransientError(new Error('boom'))).toBe(false);
    expect(isTransientError('not an error')).toBe(false);

    const db = new Database(':memory:');
    let busy: unknown;
    try {
      db.exec('ROLLBACK');
    } catch (error) {
      busy = Object.assign(error as Error, { code: 'SQLITE_BUSY' });
    }
    db.close();
    expect(isTransientError(busy, classifySqliteError)).toBe(true);
    expect(isTransientError(new StoreUnavailableError('busy', { cause: busy }), classifySqliteError)).toBe(true);
  });

  it("a handler's failure is transient only when its cause is (a dropped connection inside the handler)", () => {
    const event = {
      eventId: '00000000-0000-4000-8000-000000000000',
      type: 'Deposited',
      streamId: 's',
      version: 1,
      position: 7,
      data: {},
      metadata: {},
      recordedAt: new Date(0),
    } as never;
    expect(isTransientError(new ProjectionHandlerError('p', event, new Error('boom')), classifyPgError)).toBe(false);
    expect(isTransientError(new ProjectionHandlerError('p', event, pgError('57P01')), classifyPgError)).toBe(true);
  });

  it('property: wrapping a transient fault in causes keeps it transient; a cause cycle ends the walk', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 8 }), (depth) => {
        let error: Error = new StoreUnavailableError('down');
        for (let i = 0; i < depth; i++) error = new Error(`wrap ${i}`, { cause: error });
        expect(isTransientError(error)).toBe(true);
      }),
    );
    const a = new Error('a') as Error & { cause?: unknown };
    const b = new Error('b', { cause: a });
    a.cause = b;
    expect(isTransientError(a)).toBe(false);
  });
});

function lease(): ConsumerLease & { released: boolean } {
  const l = {
    released: false,
    onLost: () => {},
    release: async () => {
      l.released = true;
    },
  };
  return l;
}

function loopWith(lock: ConsumerLock, worker: ConsumerWorker, errors: { error: Error; info: ConsumerErrorInfo }[]): ConsumerLoop {
  return new ConsumerLoop(
    {
      name: 'c',
      owner: 'me',
      lock,
      wakeUps: undefined,
      retry: resolveRetryPolicy({ initialDelayMs: 1, maxDelayMs: 5 }),
      whenLocked: 'wait',
      lockRetryMs: 5,
      classify: undefined,
      logger: undefined,
      onError: (error, info) => errors.push({ error, info }),
      onChange: () => {},
      onEnd: () => {},
      errors: { locked: (n) => new Error(`locked ${n}`), lockLost: (n, r) => new Error(`lost ${n}: ${r}`) },
    },
    worker,
  );
}

describe('ConsumerLoop', () => {
  it('retries transient faults of lock attempts and of the worker, resuming each time, until stopped', async () => {
    const errors: { error: Error; info: ConsumerErrorInfo }[] = [];
    let lockFailures = 3;
    let runs = 0;
    const leases: ReturnType<typeof lease>[] = [];
    const lock: ConsumerLock = {
      tryAcquire: async () => {
        if (lockFailures-- > 0) throw new StoreUnavailableError('lock connection refused');
        const l = lease();
        leases.push(l);
        return l;
      },
    };
    const worker: ConsumerWorker = {
      prepare: async () => {},
      run: async (session) => {
        runs++;
        if (runs <= 2) throw new StoreUnavailableError(`read failed ${runs}`);
        session.setState('live');
        while (!session.interrupted) await session.sleep(1_000);
      },
    };
    const loop = loopWith(lock, worker, errors);
    await loop.start();
    await expect.poll(() => loop.state, { timeout: 10_000 }).toBe('live');
    expect(errors.map((e) => e.error.message)).toEqual([
      'lock connection refused',
      'lock connection refused',
      'lock connection refused',
      'read failed 1',
      'read failed 2',
    ]);
    expect(errors.every((e) => e.info.transient && e.info.willRetry && e.info.delayMs <= 5)).toBe(true);
    expect(errors.map((e) => e.info.attempt)).toEqual([1, 2, 3, 4, 5]);
    await loop.stop();
    expect(loop.state).toBe('stopped');
    // Every lease taken was given back, the failed sessions' included.
    expect(leases.map((l) => l.released)).toEqual([true, true, true]);
  });

  it('stops in state failed on a permanent fault, and start() rejects when it came first', async () => {
    const errors: { error: Error; info: ConsumerErrorInfo }[] = [];
    const loop = loopWith(
      { tryAcquire: async () => lease() },
      {
        prepare: async () => {
          throw new InvalidArgumentError('schema is wrong');
        },
        run: async () => {},
      },
      errors,
    );
    await expect(loop.start()).rejects.toThrow('schema is wrong');
    await loop.whenStopped();
    expect(loop.state).toBe('failed');
    expect(loop.error).toBeInstanceOf(InvalidArgumentError);
    // Reported once, as the end.
    expect(errors.map((e) => [e.error, e.info.willRetry, e.info.transient])).toEqual([[loop.error, false, false]]);
  });
});

describe('WakeUpChannel', () => {
  it('opens again with backoff when opening fails or the source breaks, and wakes the consumer after', async () => {
    let attempts = 0;
    let breakIt: ((error: unknown) => void) | undefined;
    const reports: ConsumerErrorInfo[] = [];
    let wakes = 0;
    let closed = 0;
    const channel = new WakeUpChannel(
      (_listener, onBroken) => {
        attempts++;
        if (attempts === 1) throw new StoreUnavailableError('LISTEN refused');
        breakIt = onBroken;
        return () => {
          closed++;
        };
      },
      { wake: () => wakes++, retry: resolveRetryPolicy({ initialDelayMs: 1, maxDelayMs: 5 }), report: (_e, info) => reports.push(info) },
    );
    await channel.open();
    await expect.poll(() => attempts, { timeout: 5_000 }).toBe(2);
    breakIt!(new Error('connection ended'));
    await expect.poll(() => attempts, { timeout: 5_000 }).toBe(3);
    expect(reports.map((r) => [r.attempt, r.transient, r.willRetry])).toEqual([
      [1, true, true],
      [1, true, true],
    ]);
    expect(wakes).toBeGreaterThanOrEqual(2);
    await channel.close();
    expect(closed).toBe(2);
  });
});

describe('readProjectionStatus', () => {
  it('reads position, lag and parked count from storage', async () => {
    const store = new InMemoryEventStore();
    await store.append('s', [{ type: 'A', data: {} }, { type: 'A', data: {} }, { type: 'A', data: {} }], { expectedVersion: 'any' });
    const checkpoints = new InMemoryCheckpointStore();
    const deadLetters = new InMemoryDeadLetterStore();
    expect(await readProjectionStatus({ store, checkpoints, deadLetters }, 'p')).toEqual({
      projection: 'p',
      position: 0,
      version: undefined,
      headPosition: 3,
      lag: 3,
      parked: 0,
    });
    await checkpoints.save('p', undefined, { position: 2, version: 1 });
    const [event] = await store.readAll({ fromPosition: 1, limit: 1 }).toArray();
    deadLetters.write('p', {
      kind: 'park',
      letter: {
        projection: 'p',
        position: 1,
        eventId: event!.eventId,
        eventType: 'A',
        streamId: 's',
        streamVersion: 1,
        error: 'x',
        attempts: 1,
        parkedAt: new Date(),
        retryRequested: false,
      },
    });
    expect(await readProjectionStatus({ store, checkpoints, deadLetters }, 'p')).toMatchObject({ position: 2, version: 1, lag: 1, parked: 1 });
  });
});
