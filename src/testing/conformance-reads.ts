import type { RecordedEvent } from '../events/types.js';
import type { EventStore } from '../store/event-store.js';
import type { EventStoreSuite } from './conformance-context.js';
import {
  contentOf,
  countdown,
  expectFailure,
  expectStrictlyIncreasing,
  numbered,
  range,
  summary,
  versionsOf,
} from './conformance-support.js';
import { expect } from './expect.js';

/** readStream ranges and directions, lazy paging, readAll and headPosition. */
export function describeReadCases(suite: EventStoreSuite): void {
  suite.describe('readStream', () => {
    const ten = async (): Promise<EventStore> => {
      const store = await suite.open();
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
      suite.test(`reads ${label}`, async () => {
        const store = await ten();
        const events = await store.readStream('s', readOptions).toArray();
        expect(versionsOf(events)).toEqual(expected);
        const all = [...numbered(4, 'first'), ...numbered(6, 'second')];
        expect(contentOf(events)).toEqual(expected.map((v) => all[v - 1]));
        expect(events.every((e) => e.streamId === 's')).toBe(true);
      });
    }

    suite.test('rejects a missing stream with StreamNotFoundError when iterated, whatever the options', async () => {
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

    suite.test('reads lazily: a stream object sees events appended before it is iterated', async () => {
      const store = await suite.open();
      await store.append('lazy', numbered(1), { expectedVersion: 'no-stream' });
      const stream = store.readStream('lazy');
      const log = store.readAll();
      await store.append('lazy', numbered(2, 'later'), { expectedVersion: 1 });
      expect(versionsOf(await stream.toArray())).toEqual([1, 2, 3]);
      expect(await log.toArray()).toHaveLength(3);
      expect(versionsOf(await stream.toArray())).toEqual([1, 2, 3]);
    });

    suite.slowTest(
      'pages through large streams: iteration, pages() and toArray() agree',
      async () => {
        const store = await suite.open();
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
    );
  });

  suite.describe('readAll and headPosition', () => {
    suite.test('an empty store has an empty log and head position 0', async () => {
      const store = await suite.open();
      expect(await store.readAll().toArray()).toEqual([]);
      expect(await store.headPosition()).toBe(0);
      expect(await store.streamVersion('anything')).toBe(0);
    });

    suite.test('returns every event once, in commit order, with strictly increasing positions', async () => {
      const store = await suite.open();
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

    suite.test('reads from a position (inclusive) and with a limit', async () => {
      const store = await suite.open();
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

    suite.test('a reader that resumes after its last position sees exactly the new events', async () => {
      const store = await suite.open();
      await store.append('a', numbered(2, 'a'), { expectedVersion: 'no-stream' });
      const seen = await store.readAll().toArray();
      const checkpoint = seen[seen.length - 1]!.position;
      const more = await store.append('b', numbered(2, 'b'), { expectedVersion: 'no-stream' });
      const next = await store.readAll({ fromPosition: checkpoint + 1 }).toArray();
      expect(next.map(summary)).toEqual(more.events.map(summary));
    });
  });
}
