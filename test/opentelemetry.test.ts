import { context, SpanStatusCode } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { AggregationTemporality, MeterProvider, MetricReader, type ResourceMetrics } from '@opentelemetry/sdk-metrics';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { Aggregate, CommandBus, ConcurrencyError, InMemoryCheckpointStore, InMemoryEventStore, OutboxRelay, Repository, type Command, type Event, type RecordedEvent } from '../src/index.js';
import { describeEventStoreConformance } from '../src/testing/index.js';
import { ATTR, commandTelemetry, instrumentEventStore, instrumentRepository, observeProjection, projectionBatchTelemetry } from '../src/opentelemetry/index.js';

type Opened = Event<'Opened', { owner: string }>;
class Account extends Aggregate<Opened> {
  owner = '';
  static open(id: string, owner: string): Account {
    const account = new Account(id);
    account.raise('Opened', { owner });
    return account;
  }
  protected apply(event: Opened): void {
    this.owner = event.data.owner;
  }
}

class TestReader extends MetricReader {
  constructor() {
    super({ aggregationTemporalitySelector: () => AggregationTemporality.CUMULATIVE });
  }
  protected async onForceFlush(): Promise<void> {}
  protected async onShutdown(): Promise<void> {}
}

const exporter = new InMemorySpanExporter();
const tracerProvider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
const contextManager = new AsyncLocalStorageContextManager();

beforeAll(() => {
  context.setGlobalContextManager(contextManager.enable());
});
afterAll(() => {
  contextManager.disable();
  context.disable();
});
beforeEach(() => exporter.reset());

function metric(metrics: ResourceMetrics, name: string) {
  for (const scope of metrics.scopeMetrics) for (const m of scope.metrics) if (m.descriptor.name === name) return m;
  return undefined;
}

function span(name: string): ReadableSpan {
  const found = exporter.getFinishedSpans().filter((s) => s.name === name);
  expect(found, `spans named ${name}`).toHaveLength(1);
  return found[0]!;
}

describe('OpenTelemetry', () => {
  it('a command makes one trace: command → repository.save → append, with stream, version and position', async () => {
    const store = instrumentEventStore(new InMemoryEventStore(), { tracerProvider });
    const accounts = instrumentRepository(new Repository(store, Account, { streamPrefix: 'account' }), {
      tracerProvider,
      aggregateType: 'Account',
    });
    type OpenAccount = Command<'OpenAccount', { id: string; owner: string }>;
    const bus = new CommandBus()
      .use(commandTelemetry({ tracerProvider }))
      .register('OpenAccount', async (c: OpenAccount) => {
        await accounts.save(Account.open(c.data.id, c.data.owner));
        return c.data.id;
      });
    await bus.dispatch({ type: 'OpenAccount', data: { id: 'a-1', owner: 'Ada' }, commandId: 'cmd-1' });

    const command = span('eventfold command OpenAccount');
    const save = span('eventfold repository.save');
    const append = span('eventfold append');
    expect(command.attributes[ATTR.commandId]).toBe('cmd-1');
    expect(save.parentSpanContext?.spanId).toBe(command.spanContext().spanId);
    expect(append.parentSpanContext?.spanId).toBe(save.spanContext().spanId);
    expect(save.spanContext().traceId).toBe(command.spanContext().traceId);
    expect(save.attributes).toMatchObject({ [ATTR.aggregateId]: 'a-1', [ATTR.aggregateType]: 'Account', [ATTR.version]: 1 });
    expect(append.attributes).toMatchObject({
      [ATTR.streamId]: 'account-a-1',
      [ATTR.expectedVersion]: 'no-stream',
      [ATTR.version]: 1,
      [ATTR.position]: 1,
      [ATTR.eventCount]: 1,
      [ATTR.outcome]: 'ok',
    });
  });

  it('a conflict is recorded as such on the span and in the conflict counter, and still thrown', async () => {
    const reader = new TestReader();
    const meterProvider = new MeterProvider({ readers: [reader] });
    const store = instrumentEventStore(new InMemoryEventStore(), { tracerProvider, meterProvider });
    await store.append('s-1', [{ type: 'A', data: {} }], { expectedVersion: 'no-stream' });
    await expect(store.append('s-1', [{ type: 'A', data: {} }], { expectedVersion: 0 })).rejects.toBeInstanceOf(ConcurrencyError);

    const failed = exporter.getFinishedSpans().filter((s) => s.name === 'eventfold append')[1]!;
    expect(failed.attributes[ATTR.outcome]).toBe('conflict');
    expect(failed.attributes[ATTR.actualVersion]).toBe(1);
    expect(failed.status.code).toBe(SpanStatusCode.ERROR);
    const { resourceMetrics } = await reader.collect();
    const conflicts = metric(resourceMetrics, 'eventfold.append.conflicts');
    expect(conflicts?.dataPoints.reduce((n, p) => n + (p.value as number), 0)).toBe(1);
    const appended = metric(resourceMetrics, 'eventfold.events.appended');
    expect(appended?.dataPoints.reduce((n, p) => n + (p.value as number), 0)).toBe(1);
    const latency = metric(resourceMetrics, 'eventfold.append.duration');
    expect(latency?.dataPoints.map((p) => p.attributes[ATTR.outcome]).sort()).toEqual(['conflict', 'ok']);
  });

  it('a read is one span from the first page to the last, with the number of events read', async () => {
    const store = instrumentEventStore(new InMemoryEventStore({ pageSize: 2 }), { tracerProvider });
    await store.append('s-1', [1, 2, 3, 4, 5].map((n) => ({ type: 'N', data: { n } })), { expectedVersion: 'any' });
    expect((await store.readStream('s-1').toArray()).length).toBe(5);
    const read = span('eventfold readStream');
    expect(read.attributes).toMatchObject({ [ATTR.streamId]: 's-1', [ATTR.eventCount]: 5, [ATTR.version]: 5, [ATTR.outcome]: 'ok' });
    exporter.reset();
    for await (const event of store.readAll()) if (event.position === 2) break; // an early stop ends the span too
    expect(span('eventfold readAll').attributes[ATTR.eventCount]).toBe(2);
  });

  it('projection lag is reported from the runner status and the head of the log', async () => {
    const reader = new TestReader();
    const meterProvider = new MeterProvider({ readers: [reader] });
    const store = new InMemoryEventStore();
    await store.append('s-1', [1, 2, 3].map((n) => ({ type: 'N', data: { n } })), { expectedVersion: 'any' });
    const runner = { status: { projection: 'users', position: 1, state: 'live' } };
    const stop = observeProjection(runner, store, { meterProvider });
    const lag = metric((await reader.collect()).resourceMetrics, 'eventfold.projection.lag');
    expect(lag?.dataPoints[0]?.value).toBe(2);
    expect(lag?.dataPoints[0]?.attributes[ATTR.projection]).toBe('users');
    stop();
  });

  it('a relay (a subscription on the projection runner) makes one span per committed batch, with its positions', async () => {
    const reader = new TestReader();
    const meterProvider = new MeterProvider({ readers: [reader] });
    const store = new InMemoryEventStore();
    for (let i = 1; i <= 5; i++) await store.append(`user-${i}`, [{ type: 'N', data: { i } }], { expectedVersion: 'no-stream' });
    const published: RecordedEvent[] = [];
    const relay = new OutboxRelay({
      name: 'to-broker',
      store,
      checkpoints: new InMemoryCheckpointStore(),
      batchSize: 2,
      broker: { name: 'fake', publish: async (events) => void published.push(...events), close: async () => {} },
      onBatch: projectionBatchTelemetry({ tracerProvider, meterProvider }),
    });
    await relay.start();
    await relay.waitUntilCaughtUp({ timeoutMs: 10_000 });
    await relay.stop();
    const batches = exporter.getFinishedSpans().filter((s) => s.name === 'eventfold projection.batch');
    expect(batches.map((b) => [b.attributes[ATTR.fromPosition], b.attributes[ATTR.position], b.attributes[ATTR.eventCount]])).toEqual([
      [0, 2, 2],
      [2, 4, 2],
      [4, 5, 1],
    ]);
    expect(batches.every((b) => b.attributes[ATTR.projection] === 'to-broker')).toBe(true);
    expect(published).toHaveLength(5);
    const events = metric((await reader.collect()).resourceMetrics, 'eventfold.projection.events');
    expect(events?.dataPoints.reduce((n, p) => n + (p.value as number), 0)).toBe(5);
  });

  it('everything not in the port passes through to the real store', async () => {
    const inner = new InMemoryEventStore();
    const store = instrumentEventStore(inner, { tracerProvider });
    expect(store.capabilities).toBe(inner.capabilities);
    expect(instrumentEventStore(store)).toBe(store);
    await store.close();
    await expect(inner.headPosition()).rejects.toMatchObject({ code: 'STORE_CLOSED' });
  });
});

// An instrumented store must keep every promise of the port: the same suite every adapter passes,
// with a provider that records every span (so the traced paths are the ones under test).
describeEventStoreConformance('instrumentEventStore(InMemoryEventStore) with a recording provider', () =>
  instrumentEventStore(new InMemoryEventStore({ pageSize: 7 }), { tracerProvider }), {
  framework: { describe, it },
  createStoreWithLimits: (limits) => instrumentEventStore(new InMemoryEventStore({ limits }), { tracerProvider }),
});

describe('OpenTelemetry without an SDK', () => {
  it('an instrumented store called while no provider is registered records nothing and behaves the same', async () => {
    const store = instrumentEventStore(new InMemoryEventStore());
    exporter.reset();
    const result = await store.append('s-1', [{ type: 'A', data: {} }], { expectedVersion: 'no-stream' });
    expect(result.version).toBe(1);
    await expect(store.append('s-1', [{ type: 'A', data: {} }], { expectedVersion: 'no-stream' })).rejects.toBeInstanceOf(ConcurrencyError);
    expect((await store.readStream('s-1').toArray()).map((e) => e.version)).toEqual([1]);
    expect(exporter.getFinishedSpans()).toEqual([]);
  });
});
