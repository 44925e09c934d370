import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createHashGate } from '../examples/user-details/hash-gate.js';

/** The gate in front of password hashing: bounded concurrency, bounded waiting, nothing lost. */
describe('hash gate', () => {
  it('never runs more than maxConcurrent at once, refuses only when the waiting room is full, and completes every admitted call', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 4 }),
        fc.integer({ min: 0, max: 6 }),
        fc.array(fc.integer({ min: 0, max: 3 }), { minLength: 1, maxLength: 25 }),
        async (maxConcurrent, maxWaiting, delays) => {
          const gate = createHashGate({ maxConcurrent, maxWaiting });
          let running = 0;
          let peak = 0;
          const outcomes = await Promise.allSettled(
            delays.map((delay, i) =>
              gate(async () => {
                running += 1;
                peak = Math.max(peak, running);
                await new Promise((resolve) => setTimeout(resolve, delay));
                running -= 1;
                return i;
              }),
            ),
          );
          expect(peak).toBeLessThanOrEqual(maxConcurrent);
          // All calls arrive at once: exactly the first maxConcurrent + maxWaiting are admitted.
          const admitted = Math.min(delays.length, maxConcurrent + maxWaiting);
          outcomes.forEach((outcome, i) => {
            if (i < admitted) expect(outcome).toEqual({ status: 'fulfilled', value: i });
            else expect(outcome.status === 'rejected' && (outcome.reason as { code?: string }).code).toBe('SERVICE_BUSY');
          });
          // Afterwards the gate is empty again: a full round is admitted.
          const again = await Promise.all(Array.from({ length: maxConcurrent + maxWaiting }, (_, i) => gate(async () => i)));
          expect(again).toHaveLength(maxConcurrent + maxWaiting);
        },
      ),
      { numRuns: 60 },
    );
  });

  it('a failing call frees its slot', async () => {
    const gate = createHashGate({ maxConcurrent: 1, maxWaiting: 0 });
    await expect(gate(async () => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    await expect(gate(async () => 'ok')).resolves.toBe('ok');
  });
});
