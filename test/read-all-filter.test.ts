import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { categoryOf, InMemoryEventStore, InvalidArgumentError, type EventStore, type ReadAllFilter, type RecordedEvent } from '../src/index.js';
import { PostgresEventStore } from '../src/postgres/index.js';
import { SqliteEventStore } from '../src/sqlite/index.js';
import { pgTestDatabase } from './support/postgres.js';

const db = pgTestDatabase();
afterAll(() => db.cleanup());

const stores: Record<string, { make: (pageSize: number) => Promise<EventStore>; runs: number }> = {
  memory: { make: async (pageSize) => new InMemoryEventStore({ pageSize }), runs: 60 },
  sqlite: { make: async (pageSize) => new SqliteEventStore({ path: ':memory:', pageSize }), runs: 60 },
  postgres: { make: async (pageSize) => PostgresEventStore.create({ pool: db.pool, schema: db.schema('filter'), pageSize }), runs: 12 },
};

const TYPES = ['Registered', 'Renamed', 'Closed', 'Odd-Type'];
const STREAMS = ['user-1', 'user-2', 'order-1', 'order-x-2', 'plain', 'ledger-9'];

const appendArb = fc.array(fc.record({ stream: fc.constantFrom(...STREAMS), types: fc.array(fc.constantFrom(...TYPES), { minLength: 1, maxLength: 3 }) }), {
  minLength: 0,
  maxLength: 25,
});
const filterArb: fc.Arbitrary<ReadAllFilter> = fc.oneof(
  fc.record({ types: fc.uniqueArray(fc.constantFrom(...TYPES, 'Never'), { minLength: 1, maxLength: 3 }) }),
  fc.record({ categories: fc.uniqueArray(fc.constantFrom('user', 'order', 'plain', 'ledger', 'none'), { minLength: 1, maxLength: 3 }) }),
  fc.record({
    types: fc.uniqueArray(fc.constantFrom(...TYPES), { minLength: 1, maxLength: 2 }),
    categories: fc.uniqueArray(fc.constantFrom('user', 'order', 'plain'), { minLength: 1, maxLength: 2 }),
  }),
);

function passes(event: RecordedEvent, filter: ReadAllFilter): boolean {
  return (filter.types === undefined || filter.types.includes(event.type)) && (filter.categories === undefined || filter.categories.includes(categoryOf(event.streamId)));
}

describe.each(Object.keys(stores))('readAll with a filter (%s)', (name) => {
  const { make, runs } = stores[name]!;

  it('returns exactly the events of the unfiltered log that pass, in position order, from any position, with any limit and page size', async () => {
    await fc.assert(
      fc.asyncProperty(appendArb, filterArb, fc.nat({ max: 40 }), fc.option(fc.integer({ min: 1, max: 30 }), { nil: undefined }), fc.integer({ min: 1, max: 7 }), async (appends, filter, from, limit, pageSize) => {
        const store = await make(pageSize);
        for (const a of appends) await store.append(a.stream, a.types.map((type) => ({ type, data: {} })), { expectedVersion: 'any' });
        const all = await store.readAll().toArray();
        const expected = all.filter((e) => e.position >= from && passes(e, filter)).slice(0, limit ?? Infinity);
        const got = await store.readAll({ fromPosition: from, filter, ...(limit === undefined ? {} : { limit }) }).toArray();
        expect(got.map((e) => e.position)).toEqual(expected.map((e) => e.position));
        expect(got).toEqual(expected);
        await store.close();
      }),
      { numRuns: runs },
    );
  });

  it('refuses a filter that makes no sense, before reading', async () => {
    const store = await make(10);
    for (const filter of [{ types: [] }, { categories: 'user' }, { types: [1] }, { types: new Array(101).fill('a') }, null]) {
      expect(() => store.readAll({ filter: filter as unknown as ReadAllFilter })).toThrow(InvalidArgumentError);
    }
    await store.close();
  });
});
