import type { AnyEvent } from '../events/types.js';
import { DEFAULT_EVENT_LIMITS, type EventLimits } from '../events/validation.js';
import type { EventStore } from '../store/event-store.js';
import type { EventStoreSuite } from './conformance-context.js';
import {
  expectFailure,
  expectFailureOf,
  orRefused,
  expectUnchanged,
  numbered,
  observe,
} from './conformance-support.js';
import { expect } from './expect.js';

/** Size limits: bytes per event and events per append. */
export function describeSizeLimitCases(suite: EventStoreSuite): void {
  suite.describe('size limits', () => {
    const small: EventLimits = { maxEventsPerAppend: 5, maxEventBytes: 200 };
    /** A store with small limits when the adapter can make one, else the default limits. */
    const limited = async (): Promise<{ store: EventStore; limits: EventLimits }> => {
      const store = await suite.openWithLimits(small);
      if (store !== undefined) return { store, limits: small };
      return { store: await suite.open(), limits: DEFAULT_EVENT_LIMITS };
    };
    /** An event whose data + metadata JSON is exactly `bytes` UTF-8 bytes ('{}' metadata = 2). */
    const sized = (bytes: number, char = 'a'): AnyEvent => {
      const overhead = JSON.stringify({ s: '' }).length + 2;
      const charBytes = Buffer.byteLength(char, 'utf8');
      const count = Math.floor((bytes - overhead) / charBytes);
      const pad = 'a'.repeat(bytes - overhead - count * charBytes);
      return { type: 'Sized', data: { s: char.repeat(count) + pad } };
    };

    suite.test('rejects an event over maxEventBytes (counting UTF-8 bytes) and accepts one at it', async () => {
      const { store, limits } = await limited();
      await store.append('s', numbered(1), { expectedVersion: 'no-stream' });
      const before = await observe(store, ['s', 'fresh']);
      for (const char of ['a', 'é', '€']) {
        const over = sized(limits.maxEventBytes + 1, char);
        const error = await expectFailure(
          () => store.append('s', [numbered(1)[0]!, over], { expectedVersion: 1 }),
          'BatchTooLargeError',
        );
        expect(error.limit).toBe(limits.maxEventBytes);
        expect(error.actual).toBe(limits.maxEventBytes + 1);
        await expectFailureOf(
          () =>
            store.appendMany([
              { streamId: 'fresh', events: numbered(1), expectedVersion: 'any' },
              { streamId: 's', events: [over], expectedVersion: 1 },
            ]),
          orRefused(suite, 'BatchTooLargeError'),
        );
        await expectFailure(() => store.appendMany([{ streamId: 's', events: [over], expectedVersion: 1 }]), 'BatchTooLargeError');
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

    suite.test('rejects more events than maxEventsPerAppend, per append and per appendMany', async () => {
      const { store, limits } = await limited();
      const max = limits.maxEventsPerAppend;
      const before = await observe(store, ['s', 't']);
      const error = await expectFailure(
        () => store.append('s', numbered(max + 1), { expectedVersion: 'any' }),
        'BatchTooLargeError',
      );
      expect(error).toMatchObject({ limit: max, actual: max + 1 });
      await expectFailureOf(
        () =>
          store.appendMany([
            { streamId: 's', events: numbered(max - 1), expectedVersion: 'any' },
            { streamId: 't', events: numbered(2), expectedVersion: 'any' },
          ]),
        orRefused(suite, 'BatchTooLargeError'),
      );
      await expectFailure(
        () => store.appendMany([{ streamId: 's', events: numbered(max + 1), expectedVersion: 'any' }]),
        'BatchTooLargeError',
      );
      await expectUnchanged(store, before);
      if (limits !== DEFAULT_EVENT_LIMITS) {
        if (suite.capabilities.atomicMultiStreamAppend) {
          const results = await store.appendMany([
            { streamId: 's', events: numbered(max - 1), expectedVersion: 'no-stream' },
            { streamId: 't', events: numbered(1), expectedVersion: 'no-stream' },
          ]);
          expect(results.map((r) => r.version)).toEqual([max - 1, 1]);
        } else {
          const results = await store.appendMany([{ streamId: 's', events: numbered(max - 1), expectedVersion: 'no-stream' }]);
          expect(results.map((r) => r.version)).toEqual([max - 1]);
        }
        expect((await store.append('s', numbered(max), { expectedVersion: max - 1 })).version).toBe(2 * max - 1);
      }
    });
  });
}
