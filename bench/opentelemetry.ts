/**
 * What OpenTelemetry costs. The same workload — 20,000 appends of one event with an expected
 * version, each to its own stream, then a read of each stream — on a store, measured in alternation:
 * - plain: the store as is (baseline);
 * - instrumented, no provider registered: `instrumentEventStore(store)` while the global OpenTelemetry
 *   API has no SDK behind it (what a user who installed the instrumentation but no SDK pays);
 * - instrumented, recording: an SDK tracer provider that records every span (to a no-op exporter).
 * On the in-memory store (the worst case: nothing else costs anything) and on SQLite (`:memory:`).
 */
import { BasicTracerProvider, SimpleSpanProcessor, type SpanExporter } from '@opentelemetry/sdk-trace-base';
import { InMemoryEventStore, type EventStore } from '../src/index.js';
import { instrumentEventStore } from '../src/opentelemetry/index.js';
import { SqliteEventStore } from '../src/sqlite/index.js';
import { compare, formatNumber, printTable, type Row } from './support/measure.js';

const APPENDS = 20_000;

async function workload(store: EventStore): Promise<void> {
  for (let i = 0; i < APPENDS; i++) {
    await store.append(`s-${i}`, [{ type: 'Happened', data: { i } }], { expectedVersion: 'no-stream' });
  }
  for (let i = 0; i < APPENDS; i += 10) await store.readStream(`s-${i}`).toArray();
  await store.close();
}

const discard: SpanExporter = { export: (_spans, done) => done({ code: 0 }), shutdown: async () => {} };
const recording = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(discard)] });

const rows: Row[] = [];
for (const [name, make] of [
  ['in-memory', () => new InMemoryEventStore()],
  ['SQLite :memory:', () => new SqliteEventStore({ path: ':memory:' })],
] as const) {
  const plainVsNoop = await compare(
    { prepare: make, run: workload },
    { prepare: () => instrumentEventStore(make()), run: workload },
    { warmup: 1, repeats: 5 },
  );
  const plainVsRecording = await compare(
    { prepare: make, run: workload },
    { prepare: () => instrumentEventStore(make(), { tracerProvider: recording }), run: workload },
    { warmup: 1, repeats: 5 },
  );
  const perSecond = (ms: number) => `${formatNumber((APPENDS * 1.1 * 1000) / ms)} ops/s`;
  const noopRatio = plainVsNoop.a.medianMs / plainVsNoop.b.medianMs;
  rows.push({
    workload: `${name}: instrumented, no provider registered`,
    eventfold: perSecond(plainVsNoop.b.medianMs),
    baseline: perSecond(plainVsNoop.a.medianMs),
    ratio: `${noopRatio.toFixed(2)}×`,
    goal: '≥ 0.95× (no cost without a provider)',
    met: noopRatio >= 0.95,
  });
  const recRatio = plainVsRecording.a.medianMs / plainVsRecording.b.medianMs;
  rows.push({
    workload: `${name}: instrumented, recording every span`,
    eventfold: perSecond(plainVsRecording.b.medianMs),
    baseline: perSecond(plainVsRecording.a.medianMs),
    ratio: `${recRatio.toFixed(2)}×`,
    goal: 'informational',
    met: true,
  });
}
printTable('OpenTelemetry overhead (ratio = plain time / instrumented time; 1.00× = free)', rows);
