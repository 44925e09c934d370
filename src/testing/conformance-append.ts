import type { RecordedEvent } from '../events/types.js';
import { MAX_STREAM_ID_LENGTH } from '../events/validation.js';
import type { ExpectedVersion } from '../store/expected-version.js';
import type { EventStoreSuite } from './conformance-context.js';
import {
  contentOf,
  expectConflict,
  expectFailure,
  expectStrictlyIncreasing,
  expectUnchanged,
  isDeeplyFrozen,
  numbered,
  observe,
  summary,
  UUID_PATTERN,
  versionsOf,
} from './conformance-support.js';
import { expect } from './expect.js';

/** Appends of one stream: what is recorded, and every expectedVersion case. */
export function describeAppendCases(suite: EventStoreSuite): void {
  suite.describe('append', () => {
    suite.test('records events with versions, positions, ids, timestamps and metadata', async () => {
      const store = await suite.open();
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

    suite.test('continues versions and positions across appends and streams', async () => {
      const store = await suite.open();
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

    suite.test('round-trips every kind of JSON value exactly', async () => {
      const store = await suite.open();
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

    suite.test('stores negative zero as 0, as JSON does', async () => {
      const store = await suite.open();
      const result = await store.append('zero', [{ type: 'Z', data: { n: -0, list: [-0] } }], { expectedVersion: 'any' });
      const [read] = await store.readStream('zero').toArray();
      for (const data of [result.events[0]!.data, read!.data] as { n: number; list: number[] }[]) {
        expect(Object.is(data.n, 0)).toBe(true);
        expect(Object.is(data.list[0], 0)).toBe(true);
      }
    });

    suite.test('is not affected by later mutation of the caller objects', async () => {
      const store = await suite.open();
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

    suite.test('accepts stream ids up to the maximum length, with unicode and SQL-looking characters', async () => {
      const store = await suite.open();
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

    suite.test('an empty append writes nothing and reports position 0', async () => {
      const store = await suite.open();
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
      const conflict = await expectConflict(() => store.append('full', [], { expectedVersion: 1 }));
      expect(conflict.actualVersion).toBe(2);
      await expectUnchanged(store, before);
    });
  });

  suite.describe('expectedVersion', () => {
    const accepted: [string, ExpectedVersion, number][] = [
      ["'no-stream' on a missing stream", 'no-stream', 0],
      ['0 on a missing stream', 0, 0],
      ["'any' on a missing stream", 'any', 0],
      ['the exact version', 3, 3],
      ["'stream-exists' on an existing stream", 'stream-exists', 3],
      ["'any' on an existing stream", 'any', 3],
    ];
    for (const [label, expectedVersion, existing] of accepted) {
      suite.test(`accepts ${label}`, async () => {
        const store = await suite.open();
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
      suite.test(`rejects ${label} with the actual version and writes nothing`, async () => {
        const store = await suite.open();
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
}
