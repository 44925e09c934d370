import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import {
  Aggregate,
  backoffDelayMs,
  ConcurrencyError,
  DEFAULT_UPDATE_BACKOFF,
  InvalidArgumentError,
  Repository,
  resolveBackoffPolicy,
  type Event,
  type EventStore,
} from '../src/index.js';
import { PostgresEventStore } from '../src/postgres/index.js';
import { SqliteEventStore } from '../src/sqlite/index.js';
import { pgTestDatabase } from './support/postgres.js';

type Counted = Event<'Counted', { by: number }>;

class Counter extends Aggregate<Counted> {
  total = 0;
  add(by: number): void {
    this.raise('Counted', { by });
  }
  protected apply(event: Counted): void {
    this.total += event.data.by;
  }
}

const db = pgTestDatabase();
afterAll(() => db.cleanup());

const stores: Record<string, () => Promise<EventStore>> = {
  sqlite: async () => new SqliteEventStore({ path: ':memory:' }),
  postgres: async () => PostgresEventStore.create({ pool: db.pool, schema: db.schema('upd') }),
};

describe.each(Object.keys(stores))('Repository.update under contention (%s)', (name) => {
  it('ten concurrent updates of one aggregate all succeed with the default retries and backoff', async () => {
    const store = await stores[name]!();
    const counters = new Repository(store, Counter, { streamPrefix: 'counter' });
    const first = new Counter('c-1');
    first.add(1);
    await counters.save(first);
    const results = await Promise.allSettled(Array.from({ length: 10 }, (_, i) => counters.update('c-1', (c) => c.add(i + 1))));
    expect(results.filter((r) => r.status === 'rejected')).toEqual([]);
    const loaded = await counters.load('c-1');
    expect(loaded.version).toBe(11);
    expect(loaded.total).toBe(1 + 55);
    await store.close();
  });

  it('without retries the same contention fails callers with ConcurrencyError and loses nothing that succeeded', async () => {
    const store = await stores[name]!();
    const counters = new Repository(store, Counter, { streamPrefix: 'counter' });
    const first = new Counter('c-2');
    first.add(1);
    await counters.save(first);
    // Interleave on purpose: every update loads before any of them saves.
    let loaded = 0;
    let release!: () => void;
    const allLoaded = new Promise<void>((resolve) => (release = resolve));
    const results = await Promise.allSettled(
      Array.from({ length: 5 }, () =>
        counters.update(
          'c-2',
          async (c) => {
            if (++loaded === 5) release();
            await allLoaded;
            c.add(1);
          },
          { retries: 0 },
        ),
      ),
    );
    const failed = results.filter((r) => r.status === 'rejected');
    expect(failed.length).toBe(4);
    for (const failure of failed) expect((failure as PromiseRejectedResult).reason).toBeInstanceOf(ConcurrencyError);
    expect((await counters.load('c-2')).total).toBe(2);
    await store.close();
  });
});

describe('backoff policy', () => {
  it('every delay lies between the unjittered share and the cap, and the cap grows no faster than the factor', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 1_000 }),
        fc.integer({ min: 0, max: 10_000 }),
        fc.double({ min: 1, max: 4, noNaN: true }),
        fc.double({ min: 0, max: 1, noNaN: true }),
        fc.integer({ min: 1, max: 60 }),
        fc.double({ min: 0, max: 0.999_999, noNaN: true }),
        (initialDelayMs, maxDelayMs, factor, jitter, failures, random) => {
          const policy = resolveBackoffPolicy(DEFAULT_UPDATE_BACKOFF, { initialDelayMs, maxDelayMs, factor, jitter }, 'backoff');
          const capped = Math.min(maxDelayMs, initialDelayMs * factor ** (failures - 1));
          const delay = backoffDelayMs(policy, failures, () => random);
          expect(delay).toBeGreaterThanOrEqual(capped * (1 - jitter) - 1e-9);
          expect(delay).toBeLessThanOrEqual(capped + 1e-9);
          expect(delay).toBeLessThanOrEqual(maxDelayMs + 1e-9);
        },
      ),
    );
  });

  it('rejects a policy that makes no sense', () => {
    for (const bad of [{ factor: 0.5 }, { jitter: 2 }, { initialDelayMs: -1 }, { maxDelayMs: Number.NaN }]) {
      expect(() => resolveBackoffPolicy(DEFAULT_UPDATE_BACKOFF, bad, 'backoff')).toThrow(InvalidArgumentError);
    }
  });
});
