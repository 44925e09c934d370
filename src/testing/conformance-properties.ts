import type { Arbitrary } from 'fast-check';
import type { AnyEvent, EventMetadata, RecordedEvent } from '../events/types.js';
import type { AppendResult, EventStore, StreamAppend } from '../store/event-store.js';
import type { ExpectedVersion } from '../store/expected-version.js';
import { capabilityLabel, type EventStoreSuite } from './conformance-context.js';
import { ERROR_CODES, expectConflict, expectFailure, expectStrictlyIncreasing, range, summary, versionsOf } from './conformance-support.js';
import { expect } from './expect.js';
import { loadFastCheck, type FastCheckModule } from './framework.js';

/**
 * Property tests of the conformance suite. Each run works on fresh stream ids in one store (so a
 * networked adapter does not pay for a new store per run) and only looks at the log after the
 * position where the run started. fast-check is loaded when a property runs (see `loadFastCheck`).
 * On a store without atomic multi-stream appends, the model expects every appendMany over two or
 * more streams to be refused and to change nothing.
 */

const STREAMS = ['a', 'b', 'c'] as const;

/** What the model keeps of an event: what a reader must get back. */
interface ModelEvent {
  readonly streamId: string;
  readonly type: string;
  readonly data: unknown;
  readonly metadata: unknown;
}

/** The reference behaviour: a map of arrays and a global list. */
class Model {
  readonly streams = new Map<string, ModelEvent[]>();
  readonly log: ModelEvent[] = [];

  version(streamId: string): number {
    return this.streams.get(streamId)?.length ?? 0;
  }

  accepts(expected: ExpectedVersion, streamId: string): boolean {
    const actual = this.version(streamId);
    if (expected === 'any') return true;
    if (expected === 'no-stream') return actual === 0;
    if (expected === 'stream-exists') return actual > 0;
    return expected === actual;
  }

  apply(entries: readonly StreamAppend[]): void {
    for (const entry of entries) {
      for (const e of entry.events) {
        const recorded: ModelEvent = {
          streamId: entry.streamId,
          type: e.type,
          // What JSON keeps: the stored form every adapter must return.
          data: JSON.parse(JSON.stringify(e.data)) as unknown,
          metadata: JSON.parse(JSON.stringify(e.metadata ?? {})) as unknown,
        };
        const stream = this.streams.get(entry.streamId) ?? [];
        stream.push(recorded);
        this.streams.set(entry.streamId, stream);
        this.log.push(recorded);
      }
    }
  }
}

function stored(events: readonly RecordedEvent[]): ModelEvent[] {
  return events.map((e) => ({ streamId: e.streamId, type: e.type, data: e.data, metadata: e.metadata }));
}

type ExpectedSpec =
  | { readonly kind: 'current' }
  | { readonly kind: 'offset'; readonly by: number }
  | { readonly kind: 'fixed'; readonly value: ExpectedVersion };

interface EntrySpec {
  readonly stream: number;
  readonly expected: ExpectedSpec;
  readonly events: readonly AnyEvent[];
}

/** The generators of the model property, built once fast-check is loaded. */
function operations(fc: FastCheckModule) {
  // JSON payloads with unicode text; NUL characters are rejected by validation, so leave them out.
  const json = fc
    .jsonValue({ maxDepth: 2, stringUnit: 'grapheme' })
    .filter((value) => !JSON.stringify(value).includes('\\u0000'));
  const metadataArb = fc.option(
    fc.oneof(
      fc.record({ correlationId: fc.uuid(), causationId: fc.uuid() }, { requiredKeys: [] }),
      fc.dictionary(fc.string({ maxLength: 10 }), json, { maxKeys: 3 }),
    ),
    { nil: undefined },
  );
  const eventArb = fc
    .record({ type: fc.constantFrom('Opened', 'Changed', 'Closed'), data: json, metadata: metadataArb })
    .map(({ type, data, metadata }): AnyEvent =>
      metadata === undefined ? { type, data } : { type, data, metadata: metadata as EventMetadata },
    );


  const expectedArb: Arbitrary<ExpectedSpec> = fc.oneof(
    { weight: 4, arbitrary: fc.constant({ kind: 'current' } as const) },
    { weight: 1, arbitrary: fc.integer({ min: -1, max: 1 }).map((by) => ({ kind: 'offset', by }) as const) },
    {
      weight: 3,
      arbitrary: fc
        .oneof(fc.constantFrom<ExpectedVersion>('any', 'no-stream', 'stream-exists'), fc.integer({ min: 0, max: 6 }))
        .map((value) => ({ kind: 'fixed', value }) as const),
    },
  );


  const entryArb: Arbitrary<EntrySpec> = fc.record({
    stream: fc.integer({ min: 0, max: STREAMS.length - 1 }),
    expected: expectedArb,
    events: fc.array(eventArb, { maxLength: 3 }),
  });

  const opArb = fc.oneof(
    entryArb.map((entry) => ({ kind: 'append' as const, entries: [entry] })),
    fc
      .uniqueArray(entryArb, { selector: (e) => e.stream, maxLength: STREAMS.length })
      .map((entries) => ({ kind: 'appendMany' as const, entries })),
  );
  return opArb;
}

function resolve(spec: ExpectedSpec, current: number): ExpectedVersion {
  if (spec.kind === 'current') return current;
  if (spec.kind === 'offset') return Math.max(0, current + spec.by);
  return spec.value;
}

async function settle<T>(promise: () => Promise<T>): Promise<{ ok: true; value: T } | { ok: false; error: unknown }> {
  try {
    return { ok: true, value: await promise() };
  } catch (error) {
    return { ok: false, error };
  }
}

async function expectStreamMatches(store: EventStore, streamId: string, model: Model): Promise<void> {
  const expected = model.streams.get(streamId) ?? [];
  expect(await store.streamVersion(streamId)).toBe(expected.length);
  if (expected.length === 0) {
    await expectFailure(() => store.readStream(streamId).toArray(), 'StreamNotFoundError');
    return;
  }
  const events = await store.readStream(streamId).toArray();
  expect(versionsOf(events)).toEqual(range(1, expected.length));
  expect(stored(events)).toStrictEqual(expected);
  const backwards = await store.readStream(streamId, { backwards: true }).toArray();
  expect(backwards.map(summary)).toEqual(events.map(summary).reverse());
}

export function describeConformanceProperties(suite: EventStoreSuite): void {
  const atomic = suite.capabilities.atomicMultiStreamAppend;
  suite.describe(`properties (${capabilityLabel(suite.capabilities)})`, () => {
    suite.slowTest(
      atomic
        ? 'random append/appendMany sequences behave like a map of arrays plus a global list'
        : 'random append/appendMany sequences behave like a map of arrays plus a global list; multi-stream appendMany is refused and changes nothing',
      async () => {
        const fc = await loadFastCheck();
        const opArb = operations(fc);
        const store = await suite.open();
        let run = 0;
        await fc.assert(
          fc.asyncProperty(fc.array(opArb, { minLength: 1, maxLength: 10 }), async (ops) => {
            const ids = STREAMS.map((s) => `model-${run}-${s}`);
            run++;
            const startHead = await store.headPosition();
            const model = new Model();
            let lastPosition = startHead;
            for (const op of ops) {
              const entries: StreamAppend[] = op.entries.map((e) => ({
                streamId: ids[e.stream]!,
                events: e.events,
                expectedVersion: resolve(e.expected, model.version(ids[e.stream]!)),
              }));
              const outcome = await settle<AppendResult[]>(() =>
                op.kind === 'append'
                  ? store.append(entries[0]!.streamId, entries[0]!.events, entries[0]!).then((r) => [r])
                  : store.appendMany(entries),
              );
              if (!atomic && new Set(entries.map((e) => e.streamId)).size > 1) {
                const error = await expectFailure(() => {
                  if (!outcome.ok) throw outcome.error;
                }, 'CapabilityNotSupportedError');
                expect(error.capability).toBe('atomicMultiStreamAppend');
                continue;
              }
              const mismatched = entries.filter((e) => !model.accepts(e.expectedVersion, e.streamId));
              if (mismatched.length > 0) {
                const error = await expectConflict(() => {
                  if (!outcome.ok) throw outcome.error;
                });
                const culprit = mismatched.find((e) => e.streamId === error.streamId);
                expect(culprit, `the error names a stream whose check failed (got '${error.streamId}')`).toBeDefined();
                expect(error.expectedVersion).toBe(culprit!.expectedVersion);
                expect(error.actualVersion).toBe(model.version(culprit!.streamId));
                continue;
              }
              if (!outcome.ok) throw outcome.error;
              expect(outcome.value).toHaveLength(entries.length);
              for (const [i, result] of outcome.value.entries()) {
                const entry = entries[i]!;
                const before = model.version(entry.streamId);
                expect(result.streamId).toBe(entry.streamId);
                expect(result.version).toBe(before + entry.events.length);
                expect(versionsOf(result.events)).toEqual(range(before + 1, before + entry.events.length));
                if (result.events.length === 0) {
                  expect(result.position).toBe(0);
                } else {
                  expectStrictlyIncreasing([lastPosition, ...result.events.map((e) => e.position)]);
                  lastPosition = result.events[result.events.length - 1]!.position;
                  expect(result.position).toBe(lastPosition);
                }
              }
              model.apply(entries);
            }
            for (const id of ids) await expectStreamMatches(store, id, model);
            const log = await store.readAll({ fromPosition: startHead + 1 }).toArray();
            expect(stored(log)).toStrictEqual(model.log);
            expectStrictlyIncreasing(log.map((e) => e.position));
            expect(await store.headPosition()).toBe(log.length === 0 ? startHead : log[log.length - 1]!.position);
          }),
          { numRuns: suite.propertyRuns },
        );
      },
    );

    suite.slowTest(
      atomic
        ? 'concurrent writers from the same versions (one or two streams each): at most one winner per stream, every loser lost to a winner'
        : 'concurrent writers from the same versions (one stream each): at most one winner per stream, every loser lost to a winner',
      async () => {
        const fc = await loadFastCheck();
        const store = await suite.open();
        let run = 0;
        const writerArb = fc.record({
          streams: fc.uniqueArray(fc.integer({ min: 0, max: STREAMS.length - 1 }), { minLength: 1, maxLength: atomic ? 2 : 1 }),
          count: fc.integer({ min: 1, max: 2 }),
        });
        await fc.assert(
          fc.asyncProperty(
            fc.array(fc.integer({ min: 0, max: 3 }), { minLength: STREAMS.length, maxLength: STREAMS.length }),
            fc.array(writerArb, { minLength: 2, maxLength: 8 }),
            async (initial, writers) => {
              const ids = STREAMS.map((s) => `race-${run}-${s}`);
              run++;
              for (const [s, count] of initial.entries()) {
                if (count > 0) {
                  await store.append(ids[s]!, [{ type: 'Seeded', data: { count } }], { expectedVersion: 'no-stream' });
                  if (count > 1) {
                    await store.append(ids[s]!, Array.from({ length: count - 1 }, () => ({ type: 'Seeded', data: {} })), {
                      expectedVersion: 1,
                    });
                  }
                }
              }
              const startHead = await store.headPosition();
              const plans: StreamAppend[][] = writers.map((writer, w) =>
                writer.streams.map((s) => ({
                  streamId: ids[s]!,
                  events: Array.from({ length: writer.count }, (_, n) => ({ type: 'Raced', data: { w, s, n } })),
                  expectedVersion: initial[s]! === 0 ? 'no-stream' : initial[s]!,
                })),
              );
              const outcomes = await Promise.allSettled(
                plans.map((plan) =>
                  plan.length === 1
                    ? store.append(plan[0]!.streamId, plan[0]!.events, plan[0]!).then((r) => [r])
                    : store.appendMany(plan),
                ),
              );

              const winnerOf = new Map<string, number>();
              for (const [w, outcome] of outcomes.entries()) {
                if (outcome.status !== 'fulfilled') continue;
                for (const entry of plans[w]!) {
                  expect(winnerOf.has(entry.streamId), `two winners on '${entry.streamId}'`).toBe(false);
                  winnerOf.set(entry.streamId, w);
                }
              }
              expect(winnerOf.size).toBeGreaterThan(0);
              const finalVersion = (streamId: string): number => {
                const s = ids.indexOf(streamId);
                const w = winnerOf.get(streamId);
                return initial[s]! + (w === undefined ? 0 : writers[w]!.count);
              };
              for (const [w, outcome] of outcomes.entries()) {
                if (outcome.status === 'fulfilled') continue;
                const reason: unknown = outcome.reason;
                const error = await expectConflict(() => {
                  throw reason;
                });
                const entry = plans[w]!.find((e) => e.streamId === error.streamId);
                expect(entry, `the error names one of the writer's streams`).toBeDefined();
                expect(winnerOf.has(error.streamId), `'${error.streamId}' was taken by a winner`).toBe(true);
                expect(error.expectedVersion).toBe(entry!.expectedVersion);
                expect(error.actualVersion).toBe(finalVersion(error.streamId));
              }

              const log = await store.readAll({ fromPosition: startHead + 1 }).toArray();
              expectStrictlyIncreasing(log.map((e) => e.position));
              const committed = [...outcomes.entries()].flatMap(([, o]) =>
                o.status === 'fulfilled' ? o.value.flatMap((r) => r.events) : [],
              );
              expect(log.map(summary).sort((x, y) => x.position - y.position)).toEqual(
                committed.map(summary).sort((x, y) => x.position - y.position),
              );
              for (const [s, id] of ids.entries()) {
                const events = await store
                  .readStream(id)
                  .toArray()
                  .catch((error: unknown) => {
                    if ((error as { code?: unknown }).code === ERROR_CODES.StreamNotFoundError) return [];
                    throw error;
                  });
                expect(versionsOf(events)).toEqual(range(1, finalVersion(id)));
                const w = winnerOf.get(id);
                const raced = events.slice(initial[s]!).map((e) => e.data);
                expect(raced).toEqual(w === undefined ? [] : plans[w]!.find((e) => e.streamId === id)!.events.map((e) => e.data));
              }
            },
          ),
          { numRuns: suite.propertyRuns },
        );
      },
    );
  });
}
