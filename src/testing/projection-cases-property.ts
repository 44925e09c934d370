import { expectFolded, logPositions, type ProjectionSuite } from './projection-context.js';
import { loadFastCheck } from './framework.js';
import { planEvents } from './projection-model.js';

/** The crash/restart property. */
export function describePropertyCases<Ctx>(suite: ProjectionSuite<Ctx>): void {
  suite.slowTest('property: crashes inside or between batches, restarts — the read model is the fold, each event applied once', async () => {
    const fc = await loadFastCheck();
    const eventArb = fc.record({
      stream: fc.integer({ min: 0, max: 3 }),
      kind: fc.constantFrom(0 as const, 1 as const, 2 as const),
      amount: fc.integer({ min: 1, max: 100 }),
    });
    await fc.assert(
      fc.asyncProperty(
        fc.array(eventArb, { minLength: 1, maxLength: 60 }),
        fc.array(fc.record({ at: fc.integer({ min: 1, max: 60 }), stopAfter: fc.boolean() }), { maxLength: 4 }),
        fc.integer({ min: 1, max: 16 }),
        async (kinds, crashes, batchSize) => {
          const f = await suite.fresh();
          try {
            for (const plan of planEvents(kinds)) await f.store.append(plan.streamId, plan.events, { expectedVersion: 'any' });
            const nth = await logPositions(f.store);
            // The position of the `n`-th event; past the end of the log, one no event has.
            const positionOf = (n: number): number => (n <= kinds.length ? nth(n) : nth(kinds.length) + n - kinds.length);
            for (const crash of crashes) {
              const at = positionOf(crash.at);
              let armed = true;
              // Either a handler throws at position `at` (a crash inside a batch: its writes roll
              // back), or the runner is stopped once its checkpoint passes `at` (between batches).
              const runner = f.runner(f.accounts({ failAt: { position: at, armed: () => armed && !crash.stopAfter } }), {
                batchSize,
                retry: { maxAttempts: 1 },
                onError: () => {},
              });
              await runner.start();
              if (crash.stopAfter) {
                while (runner.state !== 'live' && (runner.checkpoint?.position ?? 0) < at) {
                  await new Promise((resolve) => setImmediate(resolve));
                }
              } else {
                await runner.waitUntilCaughtUp({ timeoutMs: suite.timeoutMs }).catch(() => undefined);
              }
              armed = false;
              await runner.stop();
            }
            const last = f.runner(f.accounts(), { batchSize });
            await last.start();
            await last.waitUntilCaughtUp({ timeoutMs: suite.timeoutMs });
            await last.stop();
            await expectFolded(f);
          } finally {
            await suite.release(f);
          }
        },
      ),
      { numRuns: suite.propertyRuns },
    );
  });
}
