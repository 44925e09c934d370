import fc from 'fast-check';
import { expect } from 'vitest';
import { isConcurrencyError, type AppendResult, type EventStore, type ExpectedVersion, type RecordedEvent } from '../../src/index.js';

/**
 * Property-test support for group commit: random concurrent appends (conflicting and not), and a
 * check that what the store did equals some serial order of the same appends.
 */

export interface PlannedAppend {
  readonly stream: number;
  readonly expected: ExpectedVersion;
  readonly events: number;
}

/** One store call: an `append` (one entry) or an `appendMany` (several, distinct streams). */
export interface PlannedCall {
  readonly appends: readonly PlannedAppend[];
  /** Turns of the event loop to wait before calling, so calls land in different groups. */
  readonly delay: number;
}

export interface Plan {
  /** Events already in each stream before the calls (0 = no stream). */
  readonly seed: readonly number[];
  readonly calls: readonly PlannedCall[];
}

const STREAMS = 4;

const expectedArb: fc.Arbitrary<ExpectedVersion> = fc.oneof(
  fc.constantFrom<ExpectedVersion>('any', 'no-stream', 'stream-exists'),
  fc.integer({ min: 0, max: 4 }),
);

const appendArb = fc.record({ stream: fc.integer({ min: 0, max: STREAMS - 1 }), expected: expectedArb, events: fc.integer({ min: 1, max: 3 }) });

export const planArb: fc.Arbitrary<Plan> = fc.record({
  seed: fc.array(fc.integer({ min: 0, max: 2 }), { minLength: STREAMS, maxLength: STREAMS }),
  calls: fc.array(
    fc.record({
      appends: fc.oneof(
        { weight: 3, arbitrary: appendArb.map((a) => [a]) },
        { weight: 1, arbitrary: fc.uniqueArray(appendArb, { minLength: 2, maxLength: 3, selector: (a) => a.stream }) },
      ),
      delay: fc.oneof({ weight: 3, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.integer({ min: 1, max: 3 }) }),
    }),
    { minLength: 2, maxLength: 16 },
  ),
});

interface Tag {
  readonly call: number;
  readonly slot: number;
  readonly index: number;
}

type Outcome = { ok: true; results: AppendResult[] } | { ok: false; error: unknown };

const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

/**
 * Seeds the streams, makes every call of the plan concurrently, then checks the outcome against
 * a serial order. `reader` is a second store on the same database: each call, once it resolved,
 * must already be visible there (its commit is done). Returns how many calls failed with a conflict.
 */
export async function runPlan(store: EventStore, reader: EventStore, prefix: string, plan: Plan): Promise<number> {
  const streamId = (n: number) => `${prefix}-s${n}`;
  for (let s = 0; s < plan.seed.length; s++) {
    const n = plan.seed[s]!;
    if (n > 0) await store.append(streamId(s), Array.from({ length: n }, () => ({ type: 'Seed', data: {} })), { expectedVersion: 'no-stream' });
  }
  const head = await store.headPosition();
  const visibleProblems: string[] = [];
  const outcomes: Outcome[] = await Promise.all(
    plan.calls.map(async (call, c): Promise<Outcome> => {
      for (let t = 0; t < call.delay; t++) await nextTurn();
      const entries = call.appends.map((a, slot) => ({
        streamId: streamId(a.stream),
        expectedVersion: a.expected,
        events: Array.from({ length: a.events }, (_, index) => ({ type: 'Planned', data: { call: c, slot, index } satisfies Tag })),
      }));
      try {
        const results =
          entries.length === 1
            ? [await store.append(entries[0]!.streamId, entries[0]!.events, { expectedVersion: entries[0]!.expectedVersion })]
            : await store.appendMany(entries);
        // Durable and visible to others as soon as the caller hears of it.
        for (const r of results) {
          const seen = await reader.streamVersion(r.streamId);
          if (seen < r.version) visibleProblems.push(`call ${c}: ${r.streamId} at ${seen} < ${r.version}`);
        }
        return { ok: true, results };
      } catch (error) {
        return { ok: false, error };
      }
    }),
  );
  expect(visibleProblems).toEqual([]);
  const log = await reader.readAll({ fromPosition: head + 1 }).toArray();
  checkSerialOrder(plan, outcomes, log, streamId);
  return outcomes.filter((o) => !o.ok).length;
}

function satisfies(expected: ExpectedVersion, actual: number): boolean {
  if (expected === 'any') return true;
  if (expected === 'no-stream') return actual === 0;
  if (expected === 'stream-exists') return actual > 0;
  return actual === expected;
}

function checkSerialOrder(plan: Plan, outcomes: readonly Outcome[], log: readonly RecordedEvent[], streamId: (n: number) => string): void {
  // 1. Exactly the events of the successful calls are stored, each once, as their results say.
  const byTag = new Map<string, RecordedEvent>();
  for (const event of log) {
    const tag = event.data as unknown as Tag;
    const key = `${tag.call}/${tag.slot}/${tag.index}`;
    expect(byTag.has(key), `event ${key} stored twice`).toBe(false);
    byTag.set(key, event);
  }
  let expectedCount = 0;
  outcomes.forEach((outcome, c) => {
    const call = plan.calls[c]!;
    if (!outcome.ok) {
      // Only conflicts in this test, and a failed call wrote nothing.
      expect(isConcurrencyError(outcome.error), String(outcome.error)).toBe(true);
      for (let slot = 0; slot < call.appends.length; slot++) expect(byTag.has(`${c}/${slot}/0`)).toBe(false);
      return;
    }
    call.appends.forEach((append, slot) => {
      const result = outcome.results[slot]!;
      expect(result.streamId).toBe(streamId(append.stream));
      expectedCount += append.events;
      for (let index = 0; index < append.events; index++) {
        const stored = byTag.get(`${c}/${slot}/${index}`);
        expect(stored, `event ${c}/${slot}/${index} of a successful call`).toBeDefined();
        expect([stored!.position, stored!.version, stored!.eventId]).toEqual([
          result.events[index]!.position,
          result.events[index]!.version,
          result.events[index]!.eventId,
        ]);
      }
    });
  });
  expect(log.length).toBe(expectedCount);

  // 2. Replaying the successful calls in position order (a serial order) passes every check and
  // gives every version they reported; record each stream's versions along the way.
  const versions = plan.seed.map((n) => n);
  const history = plan.seed.map((n) => [n]);
  const successes = outcomes
    .map((outcome, c) => ({ outcome, c }))
    .filter((x): x is { outcome: Extract<Outcome, { ok: true }>; c: number } => x.outcome.ok)
    .sort((x, y) => Math.min(...x.outcome.results.map((r) => r.position)) - Math.min(...y.outcome.results.map((r) => r.position)));
  for (const { outcome, c } of successes) {
    const call = plan.calls[c]!;
    call.appends.forEach((append, slot) => {
      const before = versions[append.stream]!;
      expect(satisfies(append.expected, before), `call ${c} expected ${String(append.expected)} at version ${before}`).toBe(true);
      versions[append.stream] = before + append.events;
      expect(outcome.results[slot]!.version).toBe(versions[append.stream]);
      history[append.stream]!.push(versions[append.stream]!);
    });
  }

  // 3. Every conflict reports a version its stream had in that order, and one that fails its check.
  outcomes.forEach((outcome, c) => {
    if (outcome.ok) return;
    const error = outcome.error as { streamId: string; actualVersion: number; expectedVersion: ExpectedVersion };
    const append = plan.calls[c]!.appends.find((a) => streamId(a.stream) === error.streamId);
    expect(append, `conflict of call ${c} names one of its streams`).toBeDefined();
    expect(error.expectedVersion).toEqual(append!.expected);
    expect(history[append!.stream], `call ${c}: version ${error.actualVersion} never existed`).toContain(error.actualVersion);
    expect(satisfies(append!.expected, error.actualVersion)).toBe(false);
  });

  // 4. Each stream: versions 1..n in position order.
  for (let s = 0; s < versions.length; s++) {
    const events = log.filter((e) => e.streamId === streamId(s));
    expect(events.map((e) => e.version)).toEqual(events.map((_, i) => plan.seed[s]! + i + 1));
  }
}
