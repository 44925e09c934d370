import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { KnownHeads } from '../src/nats/known-heads.js';

/**
 * The rule that lets 'stream' mode publish without reading first: when `base()` says a remembered
 * message is its stream's last at JetStream sequence H, no other message of that stream may exist
 * in the log between it and H. Checked against a model log where this store's acknowledged
 * appends interleave with other writers' appends that it learns of late (refusals, reads) or never.
 */
type Step =
  | { kind: 'ours'; stream: number }
  | { kind: 'theirs'; stream: number; seen: 'never' | 'refusal' | 'read' }
  | { kind: 'base'; stream: number };

const step: fc.Arbitrary<Step> = fc.oneof(
  fc.record({ kind: fc.constant('ours' as const), stream: fc.integer({ min: 0, max: 3 }) }),
  fc.record({
    kind: fc.constant('theirs' as const),
    stream: fc.integer({ min: 0, max: 3 }),
    seen: fc.constantFrom('never' as const, 'refusal' as const, 'read' as const),
  }),
  fc.record({ kind: fc.constant('base' as const), stream: fc.integer({ min: 0, max: 3 }) }),
);

describe('KnownHeads', () => {
  it('claims a remembered message is its stream\'s last at the head only when the log agrees', () => {
    fc.assert(
      fc.property(fc.array(step, { maxLength: 60 }), (steps) => {
        const heads = new KnownHeads();
        const log: number[] = []; // log[seq - 1] = stream of the message at seq
        const versions = [0, 0, 0, 0];
        let claims = 0;
        for (const s of steps) {
          if (s.kind === 'ours' || s.kind === 'theirs') {
            log.push(s.stream);
            const seq = log.length;
            const version = ++versions[s.stream]!;
            if (s.kind === 'ours') {
              heads.observe(seq, true);
              heads.remember(`s${s.stream}`, version, seq);
            } else if (s.seen === 'refusal') {
              heads.observe(seq, false);
            } else if (s.seen === 'read') {
              heads.observe(seq, false);
              heads.remember(`s${s.stream}`, version, seq);
            }
            continue;
          }
          const known = heads.get(`s${s.stream}`);
          if (known === undefined) continue;
          const base = heads.base(known);
          if (base.head === undefined) continue;
          claims++;
          // The message is of that stream, and nothing of that stream follows it up to the head.
          expect(log[base.seq - 1]).toBe(s.stream);
          expect(base.head).toBeGreaterThanOrEqual(base.seq);
          expect(base.head).toBeLessThanOrEqual(log.length);
          for (let seq = base.seq + 1; seq <= base.head; seq++) expect(log[seq - 1]).not.toBe(s.stream);
          // And the version is that message's version.
          expect(base.version).toBe(log.slice(0, base.seq).filter((x) => x === s.stream).length);
        }
        return claims >= 0;
      }),
      { numRuns: 500 },
    );
  });

  it('a sole writer appends without reading first; a foreign message stops that until its next own append', () => {
    const heads = new KnownHeads();
    heads.observe(1, true);
    heads.remember('a', 1, 1);
    heads.observe(2, true);
    heads.remember('b', 1, 2);
    expect(heads.base(heads.get('a')!).head).toBe(2);
    heads.observe(3, false); // someone else's message, learned from a refusal
    expect(heads.base(heads.get('a')!).head).toBeUndefined();
    expect(heads.base(heads.get('b')!).head).toBeUndefined();
    heads.observe(4, true);
    heads.remember('a', 2, 4);
    expect(heads.base(heads.get('a')!)).toEqual({ version: 2, seq: 4, head: 4 });
    expect(heads.base(heads.get('b')!).head).toBeUndefined();
  });
});
