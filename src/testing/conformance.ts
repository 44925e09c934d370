import { afterEach, describe, expect, it } from 'vitest';
import type { AnyEvent, RecordedEvent } from '../events/types.js';
import { DEFAULT_EVENT_LIMITS, MAX_STREAM_ID_LENGTH, type EventLimits } from '../events/validation.js';
import type { EventStore } from '../store/event-store.js';
import type { ExpectedVersion } from '../store/expected-version.js';
import { describeConformanceProperties } from './conformance-properties.js';
import {
  contentOf,
  expectConflict,
  type StoreHarness,
  expectFailure,
  expectStrictlyIncreasing,
  expectUnchanged,
  isDeeplyFrozen,
  numbered,
  observe,
  range,
  countdown,
  summary,
  UUID_PATTERN,
  versionsOf,
} from './conformance-support.js';

export type EventStoreFactory = () => Promise<EventStore> | EventStore;

export interface EventStoreConformanceOptions {
  /**
   * Creates a fresh, empty store with the given limits (the stores' `limits` option). With it the
   * size-limit tests use small limits; without it they probe the default limits.
   */
  readonly createStoreWithLimits?: (limits: Partial<EventLimits>) => Promise<EventStore> | EventStore;
  /** fast-check runs per property (default 30). Keep it modest for networked databases. */
  readonly propertyRuns?: number;
  /** Writers racing in the concurrency tests (default 10). */
  readonly concurrentWriters?: number;
}

/** Tracks the stores a test opens so every one is closed after it, even on failure. */
export type { StoreHarness } from './conformance-support.js';

/**
 * The vitest suite every `EventStore` adapter must pass. `createStore` must return a fresh, empty,
 * isolated store on each call; the suite closes every store it opened after each test.
 *
 * Contract it checks beyond the port's types: `close()` is idempotent; errors carry the codes of
 * `src/errors.ts`; positions are strictly increasing (gaps allowed) and start at 1 or above.
 */
export function describeEventStoreConformance(
  name: string,
  createStore: EventStoreFactory,
  options: EventStoreConformanceOptions = {},
): void {
  const writers = options.concurrentWriters ?? 10;
  const propertyRuns = options.propertyRuns ?? 30;

  describe(`EventStore conformance: ${name}`, () => {
    const opened: EventStore[] = [];
    const harness: StoreHarness = {
      async open() {
        const store = await createStore();
        opened.push(store);
        return store;
      },
      async openWithLimits(limits) {
        if (options.createStoreWithLimits === undefined) return undefined;
        const store = await options.createStoreWithLimits(limits);
        opened.push(store);
        return store;
      },
    };
    const open = harness.open;

    afterEach(async () => {
      const stores = opened.splice(0);
      await Promise.all(stores.map((store) => store.close()));
    });

    describe('append', () => {
      it('records events with versions, positions, ids, timestamps and metadata', async () => {
        const store = await open();
        const before = Date.now();
        const result = await store.append(
          'order-1',
          [
            { type: 'OrderPlaced', data: { total: 12.5, lines: [{ sku: 'a', qty: 2 }] } },
            {
              type: 'OrderPaid',
              data: { method: 'card' },
              metadata: { correlationId: 'corr-1', causationId: 'cmd-7', userId: 'u-1', tags: ['x', 'y'] },
            },
          ],
          { expectedVersion: 'no-stream' },
        );
        const after = Date.now();
        expect(result.streamId).toBe('order-1');
        expect(result.version).toBe(2);
        expect(result.events).toHaveLength(2);
        const [placed, paid] = result.events as [RecordedEvent, RecordedEvent];
        expect(result.position).toBe(paid.position);
        expect(placed.position).toBeGreaterThanOrEqual(1);
        expect(paid.position).toBeGreaterThan(placed.position);
        expect(versionsOf(result.events)).toEqual([1, 2]);
        expect(result.events.map((e) => e.streamId)).toEqual(['order-1', 'order-1']);
        expect(contentOf(result.events)).toEqual([
          { type: 'OrderPlaced', data: { total: 12.5, lines: [{ sku: 'a', qty: 2 }] } },
          { type: 'OrderPaid', data: { method: 'card' } },
        ]);
        expect(placed.metadata).toEqual({});
        expect(paid.metadata).toEqual({ correlationId: 'corr-1', causationId: 'cmd-7', userId: 'u-1', tags: ['x', 'y'] });
        expect(paid.metadata.correlationId).toBe('corr-1');
        expect(paid.metadata.causationId).toBe('cmd-7');
        for (const e of result.events) {
          expect(e.eventId).toMatch(UUID_PATTERN);
          expect(e.recordedAt).toBeInstanceOf(Date);
          // Generous window: a database clock may differ slightly from the test's.
          expect(e.recordedAt.getTime()).toBeGreaterThanOrEqual(before - 60_000);
          expect(e.recordedAt.getTime()).toBeLessThanOrEqual(after + 60_000);
          expect(isDeeplyFrozen(e)).toBe(true);
        }
        expect(placed.eventId).not.toBe(paid.eventId);
        expect(Object.isFrozen(result.events)).toBe(true);

        const read = await store.readStream('order-1').toArray();
        expect(read.map(summary)).toEqual(result.events.map(summary));
        expect(read.map((e) => e.recordedAt.getTime())).toEqual(result.events.map((e) => e.recordedAt.getTime()));
        expect(read.map((e) => e.metadata)).toEqual(result.events.map((e) => e.metadata));
        expect(contentOf(read)).toEqual(contentOf(result.events));
        for (const e of read) expect(isDeeplyFrozen(e)).toBe(true);
        // recordedAt is a Date that cannot be changed in place: stores share instances between events.
        for (const e of [...result.events, ...read]) {
          const at = e.recordedAt.getTime();
          expect(() => e.recordedAt.setTime(0)).toThrow(TypeError);
          expect(() => e.recordedAt.setUTCFullYear(1999)).toThrow(TypeError);
          expect(e.recordedAt.getTime()).toBe(at);
        }
        const reread = await store.readStream('order-1').toArray();
        expect(reread.map((e) => e.recordedAt.getTime())).toEqual(result.events.map((e) => e.recordedAt.getTime()));
        expect(await store.streamVersion('order-1')).toBe(2);
        expect(await store.headPosition()).toBe(paid.position);
      });

      it('continues versions and positions across appends and streams', async () => {
        const store = await open();
        const a1 = await store.append('a', numbered(2, 'a1'), { expectedVersion: 'no-stream' });
        const b1 = await store.append('b', numbered(1, 'b1'), { expectedVersion: 0 });
        const a2 = await store.append('a', numbered(3, 'a2'), { expectedVersion: 2 });
        expect([a1.version, b1.version, a2.version]).toEqual([2, 1, 5]);
        expect(versionsOf(a2.events)).toEqual([3, 4, 5]);
        expect(b1.position).toBeGreaterThan(a1.position);
        expect(a2.events[0]!.position).toBeGreaterThan(b1.position);
        expectStrictlyIncreasing([...a1.events, ...b1.events, ...a2.events].map((e) => e.position));
        expect(contentOf(await store.readStream('a').toArray())).toEqual([...numbered(2, 'a1'), ...numbered(3, 'a2')]);
      });

      it('round-trips every kind of JSON value exactly', async () => {
        const store = await open();
        const values: unknown[] = [
          null,
          0,
          -17,
          3.141592653589793,
          1e21,
          -2.5e-7,
          Number.MAX_SAFE_INTEGER,
          true,
          false,
          '',
          'plain',
          'ünïcødé ✓ 日本語 🚀 "quotes" \\ back\\slash \n newline \t tab',
          [],
          {},
          [1, 'two', null, [3, [4]], { five: 5 }],
          { nested: { deeper: { deepest: [{}, [], ''] } }, 'key with spaces': 1, 'ключ': 'значение', '': 'empty key' },
          { constructor: 'plain', toString: 'fine', hasOwnProperty: 'too', valueOf: 0 },
        ];
        const input = values.map((data) => ({ type: 'Value', data }));
        // `__proto__` written as a literal key sets the prototype; build that case like JSON.parse would.
        input.push({ type: 'Value', data: JSON.parse('{"__proto__":{"polluted":true},"ok":1}') as unknown });
        await store.append('values', input, { expectedVersion: 'any' });
        const read = await store.readStream('values').toArray();
        expect(read).toHaveLength(input.length);
        for (let i = 0; i < input.length; i++) {
          // Key order is not part of the contract (PostgreSQL jsonb reorders keys).
          expect(read[i]!.data).toStrictEqual(JSON.parse(JSON.stringify(input[i]!.data)));
          expect(isDeeplyFrozen(read[i]!.data)).toBe(true);
        }
        const last = read[read.length - 1]!.data as Record<string, unknown>;
        expect(Object.getPrototypeOf(last)).toBe(Object.prototype);
        expect(Object.keys(last).sort()).toEqual(['__proto__', 'ok']);
        expect(last['__proto__']).toEqual({ polluted: true });
        expect(({} as Record<string, unknown>)['polluted']).toBeUndefined();
      });

      it('stores negative zero as 0, as JSON does', async () => {
        const store = await open();
        const result = await store.append('zero', [{ type: 'Z', data: { n: -0, list: [-0] } }], { expectedVersion: 'any' });
        const [read] = await store.readStream('zero').toArray();
        for (const data of [result.events[0]!.data, read!.data] as { n: number; list: number[] }[]) {
          expect(Object.is(data.n, 0)).toBe(true);
          expect(Object.is(data.list[0], 0)).toBe(true);
        }
      });

      it('is not affected by later mutation of the caller objects', async () => {
        const store = await open();
        const data = { name: 'Ada', roles: ['admin'] };
        const metadata = { correlationId: 'c-1' };
        await store.append('user-1', [{ type: 'UserRegistered', data, metadata }], { expectedVersion: 'no-stream' });
        data.name = 'Mallory';
        data.roles.push('root');
        metadata.correlationId = 'changed';
        const [read] = await store.readStream('user-1').toArray();
        expect(read!.data).toEqual({ name: 'Ada', roles: ['admin'] });
        expect(read!.metadata).toEqual({ correlationId: 'c-1' });
        expect(() => {
          (read!.data as { name: string }).name = 'x';
        }).toThrow(TypeError);
      });

      it('accepts stream ids up to the maximum length, with unicode and SQL-looking characters', async () => {
        const store = await open();
        const ids = [
          'x'.repeat(MAX_STREAM_ID_LENGTH),
          'ünïcødé-日本-🚀',
          "o'brien\"; DROP TABLE events; --",
          'a b/c:d%e_f\\g',
        ];
        for (const id of ids) {
          await store.append(id, numbered(1, id.slice(0, 10)), { expectedVersion: 'no-stream' });
        }
        for (const id of ids) {
          expect(await store.streamVersion(id)).toBe(1);
          const read = await store.readStream(id).toArray();
          expect(read.map((e) => e.streamId)).toEqual([id]);
        }
        expect((await store.readAll().toArray()).map((e) => e.streamId)).toEqual(ids);
      });

      it('an empty append writes nothing and reports position 0', async () => {
        const store = await open();
        const onMissing = await store.append('empty', [], { expectedVersion: 'no-stream' });
        expect(onMissing).toMatchObject({ streamId: 'empty', version: 0, position: 0 });
        expect(onMissing.events).toEqual([]);
        expect(await store.streamVersion('empty')).toBe(0);
        await expectFailure(() => store.readStream('empty').toArray(), 'StreamNotFoundError');
        expect(await store.headPosition()).toBe(0);

        await store.append('full', numbered(2), { expectedVersion: 'no-stream' });
        const onExisting = await store.append('full', [], { expectedVersion: 2 });
        expect(onExisting).toMatchObject({ streamId: 'full', version: 2, position: 0 });
        const before = await observe(store, ['full', 'empty']);
        const conflict = await expectFailure(() => store.append('full', [], { expectedVersion: 1 }), 'ConcurrencyError');
        expect(conflict.actualVersion).toBe(2);
        await expectUnchanged(store, before);
      });
    });

    describe('expectedVersion', () => {
      const accepted: [string, ExpectedVersion, number][] = [
        ["'no-stream' on a missing stream", 'no-stream', 0],
        ['0 on a missing stream', 0, 0],
        ["'any' on a missing stream", 'any', 0],
        ['the exact version', 3, 3],
        ["'stream-exists' on an existing stream", 'stream-exists', 3],
        ["'any' on an existing stream", 'any', 3],
      ];
      for (const [label, expectedVersion, existing] of accepted) {
        it(`accepts ${label}`, async () => {
          const store = await open();
          if (existing > 0) await store.append('s', numbered(existing, 'old'), { expectedVersion: 'no-stream' });
          const result = await store.append('s', numbered(2, 'new'), { expectedVersion });
          expect(result.version).toBe(existing + 2);
          expect(versionsOf(result.events)).toEqual([existing + 1, existing + 2]);
          expect(await store.streamVersion('s')).toBe(existing + 2);
          expect(contentOf(await store.readStream('s', { fromVersion: existing + 1 }).toArray())).toEqual(numbered(2, 'new'));
        });
      }

      const rejected: [string, ExpectedVersion, number][] = [
        ["'stream-exists' on a missing stream", 'stream-exists', 0],
        ['1 on a missing stream', 1, 0],
        ['5 on a missing stream', 5, 0],
        ["'no-stream' on an existing stream", 'no-stream', 3],
        ['0 on an existing stream', 0, 3],
        ['a version behind', 2, 3],
        ['a version ahead', 4, 3],
        ['a version far ahead', 100, 3],
      ];
      for (const [label, expectedVersion, existing] of rejected) {
        it(`rejects ${label} with the actual version and writes nothing`, async () => {
          const store = await open();
          await store.append('other', numbered(1, 'other'), { expectedVersion: 'no-stream' });
          if (existing > 0) await store.append('s', numbered(existing, 'old'), { expectedVersion: 'no-stream' });
          const before = await observe(store, ['s', 'other']);
          const error = await expectConflict(() => store.append('s', numbered(2, 'new'), { expectedVersion }));
          expect(error.streamId).toBe('s');
          expect(error.expectedVersion).toBe(expectedVersion);
          expect(error.actualVersion).toBe(existing);
          expect(error.message).toContain("'s'");
          await expectUnchanged(store, before);
        });
      }
    });

    describe('readStream', () => {
      const ten = async (): Promise<EventStore> => {
        const store = await open();
        await store.append('s', numbered(4, 'first'), { expectedVersion: 'no-stream' });
        await store.append('noise', numbered(2, 'noise'), { expectedVersion: 'no-stream' });
        await store.append('s', numbered(6, 'second'), { expectedVersion: 4 });
        return store;
      };
      const cases: [string, Parameters<EventStore['readStream']>[1], number[]][] = [
        ['everything by default', undefined, range(1, 10)],
        ['from a version', { fromVersion: 4 }, range(4, 10)],
        ['from version 0 as from the start', { fromVersion: 0 }, range(1, 10)],
        ['up to a version', { toVersion: 6 }, range(1, 6)],
        ['a closed range', { fromVersion: 3, toVersion: 7 }, range(3, 7)],
        ['a single version', { fromVersion: 5, toVersion: 5 }, [5]],
        ['with a limit', { limit: 3 }, [1, 2, 3]],
        ['from a version with a limit', { fromVersion: 5, limit: 2 }, [5, 6]],
        ['a range cut by a limit', { fromVersion: 2, toVersion: 9, limit: 4 }, [2, 3, 4, 5]],
        ['a limit beyond the end', { fromVersion: 8, limit: 50 }, [8, 9, 10]],
        ['toVersion beyond the end', { toVersion: 100 }, range(1, 10)],
        ['fromVersion just past the end', { fromVersion: 11 }, []],
        ['fromVersion far past the end', { fromVersion: 1000 }, []],
        ['toVersion 0', { toVersion: 0 }, []],
        ['an inverted range', { fromVersion: 7, toVersion: 3 }, []],
        ['limit 0', { limit: 0 }, []],
        ['backwards', { backwards: true }, countdown(10, 1)],
        ['backwards with a limit', { backwards: true, limit: 3 }, [10, 9, 8]],
        ['backwards from a version', { backwards: true, fromVersion: 6 }, countdown(6, 1)],
        ['backwards from a version down to a version', { backwards: true, fromVersion: 6, toVersion: 3 }, [6, 5, 4, 3]],
        ['backwards from a version with a limit', { backwards: true, fromVersion: 6, limit: 2 }, [6, 5]],
        ['backwards down to a version', { backwards: true, toVersion: 8 }, [10, 9, 8]],
        ['backwards from beyond the end', { backwards: true, fromVersion: 100 }, countdown(10, 1)],
        ['backwards from 0', { backwards: true, fromVersion: 0 }, []],
        ['backwards with an inverted range', { backwards: true, fromVersion: 3, toVersion: 7 }, []],
        ['backwards with limit 0', { backwards: true, limit: 0 }, []],
        ['backwards: false like forwards', { backwards: false, fromVersion: 9 }, [9, 10]],
      ];
      for (const [label, readOptions, expected] of cases) {
        it(`reads ${label}`, async () => {
          const store = await ten();
          const events = await store.readStream('s', readOptions).toArray();
          expect(versionsOf(events)).toEqual(expected);
          const all = [...numbered(4, 'first'), ...numbered(6, 'second')];
          expect(contentOf(events)).toEqual(expected.map((v) => all[v - 1]));
          expect(events.every((e) => e.streamId === 's')).toBe(true);
        });
      }

      it('rejects a missing stream with StreamNotFoundError when iterated, whatever the options', async () => {
        const store = await ten();
        const stream = store.readStream('missing');
        const error = await expectFailure(() => stream.toArray(), 'StreamNotFoundError');
        expect(error.streamId).toBe('missing');
        await expectFailure(async () => {
          for await (const _ of store.readStream('missing', { backwards: true })) void _;
        }, 'StreamNotFoundError');
        await expectFailure(async () => {
          for await (const _ of store.readStream('missing', { fromVersion: 2, limit: 1 }).pages()) void _;
        }, 'StreamNotFoundError');
      });

      it('reads lazily: a stream object sees events appended before it is iterated', async () => {
        const store = await open();
        await store.append('lazy', numbered(1), { expectedVersion: 'no-stream' });
        const stream = store.readStream('lazy');
        const log = store.readAll();
        await store.append('lazy', numbered(2, 'later'), { expectedVersion: 1 });
        expect(versionsOf(await stream.toArray())).toEqual([1, 2, 3]);
        expect(await log.toArray()).toHaveLength(3);
        expect(versionsOf(await stream.toArray())).toEqual([1, 2, 3]);
      });

      it(
        'pages through large streams: iteration, pages() and toArray() agree',
        async () => {
          const store = await open();
          const batch = 900;
          for (let i = 0; i < 3; i++) {
            await store.append('big', numbered(batch, `b${i}`), { expectedVersion: i * batch });
            await store.append(`small-${i}`, numbered(1, `s${i}`), { expectedVersion: 'no-stream' });
          }
          const total = 3 * batch;
          expect(await store.streamVersion('big')).toBe(total);

          const iterated: RecordedEvent[] = [];
          for await (const e of store.readStream('big')) iterated.push(e);
          expect(versionsOf(iterated)).toEqual(range(1, total));
          const expectedContent = [0, 1, 2].flatMap((i) => numbered(batch, `b${i}`));
          expect(contentOf(iterated)).toEqual(expectedContent);
          expectStrictlyIncreasing(iterated.map((e) => e.position));

          const paged: RecordedEvent[] = [];
          for await (const page of store.readStream('big').pages()) {
            expect(page.length).toBeGreaterThan(0);
            paged.push(...page);
          }
          expect(paged.map(summary)).toEqual(iterated.map(summary));
          expect((await store.readStream('big').toArray()).map(summary)).toEqual(iterated.map(summary));

          const backwards = await store.readStream('big', { backwards: true }).toArray();
          expect(versionsOf(backwards)).toEqual(countdown(total, 1));
          expect(versionsOf(await store.readStream('big', { fromVersion: 950, toVersion: 2100 }).toArray())).toEqual(
            range(950, 2100),
          );
          expect(versionsOf(await store.readStream('big', { fromVersion: 100, limit: 1500 }).toArray())).toEqual(
            range(100, 1599),
          );
          const backPages: RecordedEvent[] = [];
          for await (const page of store.readStream('big', { backwards: true, fromVersion: 2500, limit: 1200 }).pages()) {
            backPages.push(...page);
          }
          expect(versionsOf(backPages)).toEqual(countdown(2500, 1301));

          const log = await store.readAll().toArray();
          expect(log).toHaveLength(total + 3);
          expectStrictlyIncreasing(log.map((e) => e.position));
          const logPages: RecordedEvent[] = [];
          for await (const page of store.readAll({ fromPosition: log[1000]!.position, limit: 1500 }).pages()) {
            expect(page.length).toBeGreaterThan(0);
            logPages.push(...page);
          }
          expect(logPages.map(summary)).toEqual(log.slice(1000, 2500).map(summary));
        },
        120_000,
      );
    });

    describe('readAll and headPosition', () => {
      it('an empty store has an empty log and head position 0', async () => {
        const store = await open();
        expect(await store.readAll().toArray()).toEqual([]);
        expect(await store.headPosition()).toBe(0);
        expect(await store.streamVersion('anything')).toBe(0);
      });

      it('returns every event once, in commit order, with strictly increasing positions', async () => {
        const store = await open();
        const results = [
          await store.append('a', numbered(2, 'a1'), { expectedVersion: 'no-stream' }),
          await store.append('b', numbered(1, 'b1'), { expectedVersion: 'no-stream' }),
          await store.append('a', numbered(1, 'a2'), { expectedVersion: 2 }),
          await store.append('c', numbered(3, 'c1'), { expectedVersion: 'any' }),
        ];
        const committed = results.flatMap((r) => r.events);
        const log = await store.readAll().toArray();
        expect(log.map(summary)).toEqual(committed.map(summary));
        expect(contentOf(log)).toEqual(contentOf(committed));
        expect(log[0]!.position).toBeGreaterThanOrEqual(1);
        expectStrictlyIncreasing(log.map((e) => e.position));
        expect(new Set(log.map((e) => e.eventId)).size).toBe(log.length);
        expect(await store.headPosition()).toBe(log[log.length - 1]!.position);
        expect(results.map((r) => r.position)).toEqual(results.map((r) => r.events[r.events.length - 1]!.position));
        // The log and the streams hold the same recorded events.
        const a = await store.readStream('a').toArray();
        expect(log.filter((e) => e.streamId === 'a').map(summary)).toEqual(a.map(summary));
      });

      it('reads from a position (inclusive) and with a limit', async () => {
        const store = await open();
        await store.append('a', numbered(3, 'a'), { expectedVersion: 'no-stream' });
        await store.append('b', numbered(3, 'b'), { expectedVersion: 'no-stream' });
        const log = await store.readAll().toArray();
        const head = await store.headPosition();
        const positions = log.map((e) => e.position);

        expect((await store.readAll({ fromPosition: positions[2]! }).toArray()).map((e) => e.position)).toEqual(
          positions.slice(2),
        );
        expect((await store.readAll({ fromPosition: 0 }).toArray()).map((e) => e.position)).toEqual(positions);
        expect((await store.readAll({ limit: 2 }).toArray()).map((e) => e.position)).toEqual(positions.slice(0, 2));
        expect(
          (await store.readAll({ fromPosition: positions[1]!, limit: 3 }).toArray()).map((e) => e.position),
        ).toEqual(positions.slice(1, 4));
        expect(await store.readAll({ limit: 0 }).toArray()).toEqual([]);
        expect(await store.readAll({ fromPosition: head + 1 }).toArray()).toEqual([]);
        expect(await store.readAll({ fromPosition: head + 1000 }).toArray()).toEqual([]);
        expect((await store.readAll({ fromPosition: head }).toArray()).map((e) => e.position)).toEqual([head]);
      });

      it('a reader that resumes after its last position sees exactly the new events', async () => {
        const store = await open();
        await store.append('a', numbered(2, 'a'), { expectedVersion: 'no-stream' });
        const seen = await store.readAll().toArray();
        const checkpoint = seen[seen.length - 1]!.position;
        const more = await store.append('b', numbered(2, 'b'), { expectedVersion: 'no-stream' });
        const next = await store.readAll({ fromPosition: checkpoint + 1 }).toArray();
        expect(next.map(summary)).toEqual(more.events.map(summary));
      });
    });

    describe('appendMany', () => {
      it('appends to several streams atomically, in entry order', async () => {
        const store = await open();
        await store.append('account-1', numbered(2, 'old'), { expectedVersion: 'no-stream' });
        const results = await store.appendMany([
          { streamId: 'account-1', events: numbered(1, 'debit'), expectedVersion: 2 },
          { streamId: 'account-2', events: numbered(2, 'credit'), expectedVersion: 'no-stream' },
          { streamId: 'audit', events: numbered(1, 'audit'), expectedVersion: 'any' },
        ]);
        expect(results.map((r) => [r.streamId, r.version])).toEqual([
          ['account-1', 3],
          ['account-2', 2],
          ['audit', 1],
        ]);
        expect(versionsOf(results[1]!.events)).toEqual([1, 2]);
        for (const r of results) expect(r.position).toBe(r.events[r.events.length - 1]!.position);
        const all = results.flatMap((r) => r.events);
        expectStrictlyIncreasing(all.map((e) => e.position));
        const log = await store.readAll().toArray();
        expect(log.slice(2).map(summary)).toEqual(all.map(summary));
        expect(contentOf(await store.readStream('account-2').toArray())).toEqual(numbered(2, 'credit'));
        expect(await store.headPosition()).toBe(results[2]!.position);
      });

      for (const bad of [0, 1, 2]) {
        it(`writes nothing to any stream when entry #${bad} has the wrong expected version`, async () => {
          const store = await open();
          await store.append('x', numbered(1, 'x'), { expectedVersion: 'no-stream' });
          await store.append('y', numbered(2, 'y'), { expectedVersion: 'no-stream' });
          const before = await observe(store, ['x', 'y', 'z']);
          const entries = [
            { streamId: 'x', events: numbered(1, 'x2'), expectedVersion: 1 as ExpectedVersion },
            { streamId: 'y', events: numbered(1, 'y2'), expectedVersion: 'stream-exists' as ExpectedVersion },
            { streamId: 'z', events: numbered(2, 'z1'), expectedVersion: 'no-stream' as ExpectedVersion },
          ];
          const wrong: ExpectedVersion[] = [5, 'no-stream', 'stream-exists'];
          const actual = [1, 2, 0];
          entries[bad] = { ...entries[bad]!, expectedVersion: wrong[bad]! };
          const error = await expectConflict(() => store.appendMany(entries));
          expect(error.streamId).toBe(entries[bad]!.streamId);
          expect(error.expectedVersion).toBe(wrong[bad]);
          expect(error.actualVersion).toBe(actual[bad]);
          await expectUnchanged(store, before);
        });
      }

      it('entries with no events are pure version checks', async () => {
        const store = await open();
        await store.append('guard', numbered(3, 'g'), { expectedVersion: 'no-stream' });
        const ok = await store.appendMany([
          { streamId: 'guard', events: [], expectedVersion: 3 },
          { streamId: 'target', events: numbered(1, 't'), expectedVersion: 'no-stream' },
        ]);
        expect(ok[0]).toMatchObject({ streamId: 'guard', version: 3, position: 0 });
        expect(ok[0]!.events).toEqual([]);
        expect(ok[1]!.version).toBe(1);
        expect(await store.streamVersion('guard')).toBe(3);

        const before = await observe(store, ['guard', 'target', 'absent']);
        const error = await expectFailure(
          () =>
            store.appendMany([
              { streamId: 'target', events: numbered(1, 't2'), expectedVersion: 1 },
              { streamId: 'guard', events: [], expectedVersion: 2 },
            ]),
          'ConcurrencyError',
        );
        expect(error).toMatchObject({ streamId: 'guard', expectedVersion: 2, actualVersion: 3 });
        const absent = await expectFailure(
          () =>
            store.appendMany([
              { streamId: 'absent', events: [], expectedVersion: 'stream-exists' },
              { streamId: 'target', events: numbered(1, 't3'), expectedVersion: 'any' },
            ]),
          'ConcurrencyError',
        );
        expect(absent).toMatchObject({ streamId: 'absent', expectedVersion: 'stream-exists', actualVersion: 0 });
        await expectUnchanged(store, before);
      });

      it('an empty list and all-empty entries write nothing', async () => {
        const store = await open();
        expect(await store.appendMany([])).toEqual([]);
        const results = await store.appendMany([
          { streamId: 'p', events: [], expectedVersion: 'no-stream' },
          { streamId: 'q', events: [], expectedVersion: 'any' },
        ]);
        expect(results.map((r) => [r.streamId, r.version, r.position, r.events.length])).toEqual([
          ['p', 0, 0, 0],
          ['q', 0, 0, 0],
        ]);
        expect(await store.headPosition()).toBe(0);
        expect(await store.streamVersion('p')).toBe(0);
      });

      it('rejects a stream named twice and writes nothing', async () => {
        const store = await open();
        const before = await observe(store, ['dup', 'other']);
        await expectFailure(
          () =>
            store.appendMany([
              { streamId: 'dup', events: numbered(1), expectedVersion: 'any' },
              { streamId: 'other', events: numbered(1), expectedVersion: 'any' },
              { streamId: 'dup', events: numbered(1), expectedVersion: 'any' },
            ]),
          'InvalidArgumentError',
        );
        await expectUnchanged(store, before);
      });

      it('rejects a malformed argument', async () => {
        const store = await open();
        const before = await observe(store, ['s']);
        const many = store.appendMany.bind(store) as (value: unknown) => Promise<unknown>;
        await expectFailure(() => many(undefined), 'InvalidArgumentError');
        await expectFailure(() => many({ streamId: 's', events: [], expectedVersion: 'any' }), 'InvalidArgumentError');
        await expectFailure(() => many([null]), 'InvalidArgumentError');
        await expectFailure(() => many([{ streamId: 's', events: numbered(1), expectedVersion: 'any' }, 7]), 'InvalidArgumentError');
        await expectUnchanged(store, before);
      });
    });

    describe('concurrent appends', () => {
      const racers = (count: number) => Array.from({ length: count }, (_, w) => numbered((w % 3) + 1, `w${w}`));

      const exactlyOneWins: [string, ExpectedVersion, number][] = [
        ['an exact version', 2, 2],
        ["'no-stream'", 'no-stream', 0],
        ['version 0', 0, 0],
      ];
      for (const [label, expectedVersion, existing] of exactlyOneWins) {
        it(`${writers} writers from ${label}: exactly one wins, the others see its version`, async () => {
          const store = await open();
          if (existing > 0) await store.append('race', numbered(existing, 'old'), { expectedVersion: 'no-stream' });
          const batches = racers(writers);
          const outcomes = await Promise.allSettled(
            batches.map((events) => store.append('race', events, { expectedVersion })),
          );
          const winners = outcomes.flatMap((o, w) => (o.status === 'fulfilled' ? [w] : []));
          expect(winners).toHaveLength(1);
          const winner = winners[0]!;
          const finalVersion = existing + batches[winner]!.length;
          expect((outcomes[winner] as PromiseFulfilledResult<{ version: number }>).value.version).toBe(finalVersion);
          for (const [w, outcome] of outcomes.entries()) {
            if (w === winner) continue;
            const error = await expectConflict(() => {
              if (outcome.status === 'rejected') throw outcome.reason;
            });
            expect(error).toMatchObject({ streamId: 'race', expectedVersion, actualVersion: finalVersion });
          }
          const stream = await store.readStream('race').toArray();
          expect(versionsOf(stream)).toEqual(range(1, finalVersion));
          expect(contentOf(stream.slice(existing))).toEqual(batches[winner]);
          expect(await store.readAll().toArray()).toHaveLength(finalVersion);
        });
      }

      for (const expectedVersion of ['any', 'stream-exists'] as const) {
        it(`${writers} writers with '${expectedVersion}' all succeed, each append contiguous`, async () => {
          const store = await open();
          await store.append('shared', numbered(1, 'seed'), { expectedVersion: 'no-stream' });
          const batches = racers(writers);
          const results = await Promise.all(batches.map((events) => store.append('shared', events, { expectedVersion })));
          const total = 1 + batches.reduce((sum, b) => sum + b.length, 0);
          const stream = await store.readStream('shared').toArray();
          expect(versionsOf(stream)).toEqual(range(1, total));
          expectStrictlyIncreasing(stream.map((e) => e.position));
          for (const [w, result] of results.entries()) {
            const first = result.version - batches[w]!.length + 1;
            expect(contentOf(stream.slice(first - 1, result.version))).toEqual(batches[w]);
            expect(versionsOf(result.events)).toEqual(range(first, result.version));
          }
        });
      }

      it(`${writers} writers on different streams never conflict`, async () => {
        const store = await open();
        const results = await Promise.all(
          racers(writers).map((events, w) => store.append(`own-${w}`, events, { expectedVersion: 'no-stream' })),
        );
        const log = await store.readAll().toArray();
        expect(log).toHaveLength(results.reduce((sum, r) => sum + r.version, 0));
        expectStrictlyIncreasing(log.map((e) => e.position));
        expect(await store.headPosition()).toBe(log[log.length - 1]!.position);
        for (const [w, result] of results.entries()) {
          expect(versionsOf(await store.readStream(`own-${w}`).toArray())).toEqual(range(1, result.version));
        }
      });
    });

    describe('closed store', () => {
      it('rejects every call with StoreClosedError, and close() is idempotent', async () => {
        const store = await open();
        await store.append('s', numbered(2), { expectedVersion: 'no-stream' });
        const openedStream = store.readStream('s');
        const openedLog = store.readAll();
        await store.close();
        await store.close();
        const calls: [string, () => unknown][] = [
          ['append', () => store.append('s', numbered(1), { expectedVersion: 'any' })],
          ['appendMany', () => store.appendMany([{ streamId: 's', events: numbered(1), expectedVersion: 'any' }])],
          ['readStream', () => store.readStream('s').toArray()],
          ['readStream (missing stream)', () => store.readStream('missing').toArray()],
          ['readAll', () => store.readAll().toArray()],
          ['readAll pages', async () => {
            for await (const _ of store.readAll().pages()) void _;
          }],
          ['a stream read made before close', () => openedStream.toArray()],
          ['a log read made before close', () => openedLog.toArray()],
          ['streamVersion', () => store.streamVersion('s')],
          ['headPosition', () => store.headPosition()],
        ];
        for (const [label, call] of calls) {
          const error = await expectFailure(call, 'StoreClosedError').catch((e: unknown) => {
            throw new Error(`${label}: ${(e as Error).message}`);
          });
          expect(error.code).toBe('STORE_CLOSED');
        }
      });
    });

    describe('bad input is rejected before anything is written', () => {
      const seeded = async (): Promise<EventStore> => {
        const store = await open();
        await store.append('s', numbered(2, 'seed'), { expectedVersion: 'no-stream' });
        return store;
      };
      const streams = ['s', 'fresh'];

      const badIds: [string, unknown][] = [
        ['empty', ''],
        ['too long', 'x'.repeat(MAX_STREAM_ID_LENGTH + 1)],
        ['with a newline', 'a\nb'],
        ['with a NUL', 'a\u0000b'],
        ['with DEL', 'a\u007f'],
        ['with a lone surrogate', 'a\ud800'],
        ['with leading whitespace', ' s'],
        ['with trailing whitespace', 's '],
        ['a number', 42],
        ['null', null],
        ['undefined', undefined],
        ['an object', { id: 's' }],
      ];
      for (const [label, streamId] of badIds) {
        it(`rejects a stream id that is ${label}`, async () => {
          const store = await seeded();
          const before = await observe(store, streams);
          const id = streamId as string;
          await expectFailure(() => store.append(id, numbered(1), { expectedVersion: 'any' }), 'InvalidStreamIdError');
          await expectFailure(
            () =>
              store.appendMany([
                { streamId: 'fresh', events: numbered(1), expectedVersion: 'any' },
                { streamId: id, events: numbered(1), expectedVersion: 'any' },
              ]),
            'InvalidStreamIdError',
          );
          await expectFailure(() => store.readStream(id).toArray(), 'InvalidStreamIdError');
          await expectFailure(() => store.streamVersion(id), 'InvalidStreamIdError');
          await expectUnchanged(store, before);
        });
      }

      const badEvents: [string, unknown][] = [
        ['null', null],
        ['a number', 42],
        ['a string', 'UserRegistered'],
        ['an event without a type', { data: {} }],
        ['an event with an empty type', { type: '', data: {} }],
        ['an event with a non-string type', { type: 7, data: {} }],
        ['an event with an over-long type', { type: 'T'.repeat(257), data: {} }],
        ['an event with a NUL in its type', { type: 'T\u0000', data: {} }],
        ['an event without data', { type: 'T' }],
        ['an event with undefined data', { type: 'T', data: undefined }],
        ['an event with array metadata', { type: 'T', data: {}, metadata: ['x'] }],
        ['an event with string metadata', { type: 'T', data: {}, metadata: 'x' }],
        ['an event with null metadata', { type: 'T', data: {}, metadata: null }],
      ];
      const cycle: Record<string, unknown> = { a: 1 };
      cycle['self'] = cycle;
      const arrayCycle: unknown[] = [1];
      arrayCycle.push({ back: arrayCycle });
      const badData: [string, unknown][] = [
        ['a function', () => 1],
        ['a nested function', { f: () => 1 }],
        ['a symbol', Symbol('s')],
        ['a symbol key', { [Symbol('k')]: 1 }],
        ['a BigInt', 10n],
        ['a nested BigInt', { n: [1, 2n] }],
        ['a cycle', cycle],
        ['a cycle through an array', arrayCycle],
        ['a nested undefined', { a: undefined }],
        ['an undefined array item', [1, undefined]],
        ['NaN', { n: Number.NaN }],
        ['Infinity', { n: Number.POSITIVE_INFINITY }],
        ['-Infinity', [Number.NEGATIVE_INFINITY]],
        ['a Date', { at: new Date(0) }],
        ['a Map', new Map([['k', 1]])],
        ['a Set', { s: new Set([1]) }],
        ['a class instance', { v: new (class Money { amount = 1 })() }],
        ['a boxed string', { s: Object('x') as unknown }],
        ['a string with a NUL character', { s: 'a\u0000b' }],
        ['a lone surrogate', { s: 'x\ud800y' }],
        ['a key with a NUL character', { ['k\u0000']: 1 }],
      ];
      const invalid: [string, unknown][] = [
        ...badEvents,
        ...badData.map(([label, data]): [string, unknown] => [`data with ${label}`, { type: 'T', data }]),
        ...badData
          .filter(([, data]) => typeof data === 'object' && data !== null && !(data instanceof Map))
          .map(([label, data]): [string, unknown] => [`metadata with ${label}`, { type: 'T', data: {}, metadata: data }]),
      ];
      for (const [label, bad] of invalid) {
        it(`rejects ${label}`, async () => {
          const store = await seeded();
          const before = await observe(store, streams);
          const good = numbered(1, 'good')[0]!;
          const events = [good, bad, good] as AnyEvent[];
          const error = await expectFailure(() => store.append('s', events, { expectedVersion: 2 }), 'InvalidEventError');
          expect(error.details.index).toBe(1);
          // Bad input is reported even when the expected version is wrong as well.
          await expectFailure(() => store.append('s', events, { expectedVersion: 7 }), 'InvalidEventError');
          await expectFailure(
            () =>
              store.appendMany([
                { streamId: 'fresh', events: [good], expectedVersion: 'no-stream' },
                { streamId: 's', events, expectedVersion: 2 },
              ]),
            'InvalidEventError',
          );
          await expectUnchanged(store, before);
        });
      }

      it('rejects events that are not an array', async () => {
        const store = await seeded();
        const before = await observe(store, streams);
        for (const events of [undefined, null, { type: 'T', data: {} }, 'events']) {
          await expectFailure(
            () => store.append('s', events as unknown as AnyEvent[], { expectedVersion: 'any' }),
            'InvalidEventError',
          );
        }
        await expectUnchanged(store, before);
      });

      const badExpected: [string, unknown][] = [
        ['negative', -1],
        ['fractional', 1.5],
        ['NaN', Number.NaN],
        ['Infinity', Number.POSITIVE_INFINITY],
        ['a numeric string', '2'],
        ['an unknown keyword', 'latest'],
        ['null', null],
        ['missing', undefined],
      ];
      for (const [label, expectedVersion] of badExpected) {
        it(`rejects an expectedVersion that is ${label}`, async () => {
          const store = await seeded();
          const before = await observe(store, streams);
          const expected = expectedVersion as ExpectedVersion;
          await expectFailure(() => store.append('s', numbered(1), { expectedVersion: expected }), 'InvalidArgumentError');
          await expectFailure(
            () => store.appendMany([{ streamId: 'fresh', events: numbered(1), expectedVersion: expected }]),
            'InvalidArgumentError',
          );
          await expectUnchanged(store, before);
        });
      }

      it('rejects an append without options', async () => {
        const store = await seeded();
        const before = await observe(store, streams);
        const append = store.append.bind(store) as (...args: unknown[]) => Promise<unknown>;
        await expectFailure(() => append('s', numbered(1)), 'InvalidArgumentError');
        await expectUnchanged(store, before);
      });

      const badStreamReads: [string, Record<string, unknown>][] = [
        ['a negative fromVersion', { fromVersion: -1 }],
        ['a fractional fromVersion', { fromVersion: 1.5 }],
        ['a NaN fromVersion', { fromVersion: Number.NaN }],
        ['a string fromVersion', { fromVersion: '1' }],
        ['a negative toVersion', { toVersion: -2 }],
        ['an infinite toVersion', { toVersion: Number.POSITIVE_INFINITY }],
        ['a negative limit', { limit: -1 }],
        ['a fractional limit', { limit: 0.5 }],
        ['a negative fromVersion backwards', { backwards: true, fromVersion: -1 }],
      ];
      for (const [label, readOptions] of badStreamReads) {
        it(`rejects a readStream with ${label}`, async () => {
          const store = await seeded();
          await expectFailure(() => store.readStream('s', readOptions).toArray(), 'InvalidArgumentError');
          await expectFailure(() => store.readStream('missing', readOptions).toArray(), 'InvalidArgumentError');
        });
      }

      const badLogReads: [string, Record<string, unknown>][] = [
        ['a negative fromPosition', { fromPosition: -1 }],
        ['a fractional fromPosition', { fromPosition: 2.5 }],
        ['a string fromPosition', { fromPosition: '3' }],
        ['a negative limit', { limit: -5 }],
        ['a NaN limit', { limit: Number.NaN }],
      ];
      for (const [label, readOptions] of badLogReads) {
        it(`rejects a readAll with ${label}`, async () => {
          const store = await seeded();
          await expectFailure(() => store.readAll(readOptions).toArray(), 'InvalidArgumentError');
        });
      }

      describe('size limits', () => {
        const small: EventLimits = { maxEventsPerAppend: 5, maxEventBytes: 200 };
        /** A store with small limits when the adapter can make one, else the default limits. */
        const limited = async (): Promise<{ store: EventStore; limits: EventLimits }> => {
          const store = await harness.openWithLimits(small);
          if (store !== undefined) return { store, limits: small };
          return { store: await open(), limits: DEFAULT_EVENT_LIMITS };
        };
        /** An event whose data + metadata JSON is exactly `bytes` UTF-8 bytes ('{}' metadata = 2). */
        const sized = (bytes: number, char = 'a'): AnyEvent => {
          const overhead = JSON.stringify({ s: '' }).length + 2;
          const charBytes = Buffer.byteLength(char, 'utf8');
          const count = Math.floor((bytes - overhead) / charBytes);
          const pad = 'a'.repeat(bytes - overhead - count * charBytes);
          return { type: 'Sized', data: { s: char.repeat(count) + pad } };
        };

        it('rejects an event over maxEventBytes (counting UTF-8 bytes) and accepts one at it', async () => {
          const { store, limits } = await limited();
          await store.append('s', numbered(1), { expectedVersion: 'no-stream' });
          const before = await observe(store, streams);
          for (const char of ['a', 'é', '€']) {
            const over = sized(limits.maxEventBytes + 1, char);
            const error = await expectFailure(
              () => store.append('s', [numbered(1)[0]!, over], { expectedVersion: 1 }),
              'BatchTooLargeError',
            );
            expect(error.limit).toBe(limits.maxEventBytes);
            expect(error.actual).toBe(limits.maxEventBytes + 1);
            await expectFailure(
              () =>
                store.appendMany([
                  { streamId: 'fresh', events: numbered(1), expectedVersion: 'any' },
                  { streamId: 's', events: [over], expectedVersion: 1 },
                ]),
              'BatchTooLargeError',
            );
          }
          const metaHeavy: AnyEvent = { type: 'M', data: {}, metadata: { note: 'm'.repeat(limits.maxEventBytes) } };
          await expectFailure(() => store.append('s', [metaHeavy], { expectedVersion: 'any' }), 'BatchTooLargeError');
          await expectUnchanged(store, before);
          if (limits !== DEFAULT_EVENT_LIMITS) {
            const atLimit = sized(limits.maxEventBytes, 'é');
            const result = await store.append('s', [atLimit], { expectedVersion: 1 });
            expect(result.version).toBe(2);
            expect((await store.readStream('s', { fromVersion: 2 }).toArray())[0]!.data).toEqual(atLimit.data);
          }
        });

        it('rejects more events than maxEventsPerAppend, per append and per appendMany', async () => {
          const { store, limits } = await limited();
          const max = limits.maxEventsPerAppend;
          const before = await observe(store, ['s', 't']);
          const error = await expectFailure(
            () => store.append('s', numbered(max + 1), { expectedVersion: 'any' }),
            'BatchTooLargeError',
          );
          expect(error).toMatchObject({ limit: max, actual: max + 1 });
          await expectFailure(
            () =>
              store.appendMany([
                { streamId: 's', events: numbered(max - 1), expectedVersion: 'any' },
                { streamId: 't', events: numbered(2), expectedVersion: 'any' },
              ]),
            'BatchTooLargeError',
          );
          await expectUnchanged(store, before);
          if (limits !== DEFAULT_EVENT_LIMITS) {
            const results = await store.appendMany([
              { streamId: 's', events: numbered(max - 1), expectedVersion: 'no-stream' },
              { streamId: 't', events: numbered(1), expectedVersion: 'no-stream' },
            ]);
            expect(results.map((r) => r.version)).toEqual([max - 1, 1]);
            expect((await store.append('s', numbered(max), { expectedVersion: max - 1 })).version).toBe(2 * max - 1);
          }
        });
      });
    });

    describeConformanceProperties(harness, { runs: propertyRuns });
  });
}
