import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { StreamCallOrder } from '../src/store/stream-order.js';

describe('StreamCallOrder (per-stream call order without group commit)', () => {
  it('property: calls sharing a stream run one at a time in call order; a call with no busy stream starts at once', async () => {
    const call = fc.record({
      streams: fc.uniqueArray(fc.integer({ min: 0, max: 4 }), { minLength: 1, maxLength: 3 }),
      delay: fc.integer({ min: 0, max: 3 }),
      fails: fc.boolean(),
    });
    await fc.assert(
      fc.asyncProperty(fc.array(call, { minLength: 1, maxLength: 14 }), async (calls) => {
        const order = new StreamCallOrder();
        const running = new Set<number>();
        const started: number[] = [];
        const finished = new Set<number>();
        const settled = calls.map((c, index) => {
          // All calls are made in one turn, so no earlier call has settled yet: a call sharing no
          // stream with an earlier one must start at once.
          const busy = calls.slice(0, index).some((earlier) => earlier.streams.some((s) => c.streams.includes(s)));
          let startedNow = false;
          const result = order.run(
            c.streams.map((s) => `s-${s}`),
            async () => {
              startedNow = true;
              for (const other of running) {
                // Never two calls on one stream at once.
                expect(calls[other]!.streams.some((s) => c.streams.includes(s))).toBe(false);
              }
              // Every earlier call on a shared stream has finished.
              for (let j = 0; j < index; j++) {
                if (calls[j]!.streams.some((s) => c.streams.includes(s))) expect(finished.has(j)).toBe(true);
              }
              running.add(index);
              started.push(index);
              for (let k = 0; k < c.delay; k++) await new Promise((resolve) => setImmediate(resolve));
              running.delete(index);
              finished.add(index);
              if (c.fails) throw new Error(`call ${index}`);
              return index;
            },
          );
          if (!busy) expect(startedNow).toBe(true);
          return result.then(
            (value) => ({ ok: true, value }),
            (error: Error) => ({ ok: false, value: error.message }),
          );
        });
        const outcomes = await Promise.all(settled);
        // Each call answered with its own outcome, a failure included (it does not hold up the rest).
        outcomes.forEach((outcome, index) => expect(outcome).toEqual(calls[index]!.fails ? { ok: false, value: `call ${index}` } : { ok: true, value: index }));
        expect(started).toHaveLength(calls.length);
        await order.drain();
      }),
      { numRuns: 200 },
    );
  });

  it('drain() waits for calls made so far, including those queued behind others', async () => {
    const order = new StreamCallOrder();
    const done: number[] = [];
    const slow = (n: number) => async () => {
      await new Promise((resolve) => setTimeout(resolve, 5));
      done.push(n);
    };
    void order.run(['a'], slow(1));
    void order.run(['a', 'b'], slow(2));
    void order.run(['b'], slow(3));
    await order.drain();
    expect(done).toEqual([1, 2, 3]);
  });
});
