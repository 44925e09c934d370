import type { ExpectedVersion } from '../store/expected-version.js';
import type { EventStoreSuite } from './conformance-context.js';
import {
  contentOf,
  expectConflict,
  expectFailure,
  expectStrictlyIncreasing,
  numbered,
  range,
  versionsOf,
} from './conformance-support.js';
import { expect } from './expect.js';

/** Writers racing on one stream and on many; the closed store. */
export function describeConcurrencyCases(suite: EventStoreSuite): void {
  suite.describe('concurrent appends', () => {
    const racers = (count: number) => Array.from({ length: count }, (_, w) => numbered((w % 3) + 1, `w${w}`));

    const exactlyOneWins: [string, ExpectedVersion, number][] = [
      ['an exact version', 2, 2],
      ["'no-stream'", 'no-stream', 0],
      ['version 0', 0, 0],
    ];
    for (const [label, expectedVersion, existing] of exactlyOneWins) {
      suite.test(`${suite.writers} writers from ${label}: exactly one wins, the others see its version`, async () => {
        const store = await suite.open();
        if (existing > 0) await store.append('race', numbered(existing, 'old'), { expectedVersion: 'no-stream' });
        const batches = racers(suite.writers);
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
      suite.test(`${suite.writers} writers with '${expectedVersion}' all succeed, each append contiguous`, async () => {
        const store = await suite.open();
        await store.append('shared', numbered(1, 'seed'), { expectedVersion: 'no-stream' });
        const batches = racers(suite.writers);
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

    suite.test(`${suite.writers} writers on different streams never conflict`, async () => {
      const store = await suite.open();
      const results = await Promise.all(
        racers(suite.writers).map((events, w) => store.append(`own-${w}`, events, { expectedVersion: 'no-stream' })),
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

  suite.describe('closed store', () => {
    suite.test('rejects every call with StoreClosedError, and close() is idempotent', async () => {
      const store = await suite.open();
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
}
