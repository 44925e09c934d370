import { SpanKind, type Span } from '@opentelemetry/api';
import type { AnyEvent, RecordedEvent } from '../events/types.js';
import type { AppendOptions, AppendResult, EventStore, ReadAllOptions, ReadStreamOptions, StreamAppend } from '../store/event-store.js';
import type { EventStream } from '../store/event-stream.js';
import { ATTR, outcomeOf, recordFailure, Telemetry, type TelemetryOptions } from './telemetry.js';

const INSTRUMENTED = Symbol.for('eventfold.opentelemetry.instrumented');

/**
 * Returns the store with spans and metrics around every port method: `append`, `appendMany`,
 * reads (a span per `readStream`/`readAll` iteration, ended when the caller stops reading),
 * `streamVersion` and `headPosition`. Everything else (migrate, adapter-specific methods) passes
 * through untouched, so the result can replace the store everywhere, inline projections included.
 */
export function instrumentEventStore<S extends EventStore>(store: S, options: TelemetryOptions = {}): S {
  if ((store as unknown as Record<symbol, unknown>)[INSTRUMENTED] === true) return store;
  const t = new Telemetry(options);

  const append = (streamId: string, events: readonly AnyEvent[], appendOptions: AppendOptions): Promise<AppendResult> => {
    if (!t.active) return store.append(streamId, events, appendOptions);
    const started = performance.now();
    const attributes = {
      [ATTR.operation]: 'append',
      [ATTR.streamId]: streamId,
      [ATTR.eventCount]: Array.isArray(events) ? events.length : 0,
      [ATTR.expectedVersion]: String((appendOptions as AppendOptions | undefined)?.expectedVersion),
    };
    return t
      .span('eventfold append', attributes, () => store.append(streamId, events, appendOptions), (span, result) => {
        span.setAttribute(ATTR.version, result.version);
        span.setAttribute(ATTR.position, result.position);
      }, SpanKind.CLIENT)
      .then(
        (result) => {
          t.appendDuration.record(performance.now() - started, { [ATTR.operation]: 'append', [ATTR.outcome]: 'ok' });
          t.eventsAppended.add(result.events.length);
          return result;
        },
        (error: unknown) => {
          measureFailure(t, 'append', started, error);
          throw error;
        },
      );
  };

  const appendMany = (appends: readonly StreamAppend[]): Promise<AppendResult[]> => {
    if (!t.active) return store.appendMany(appends);
    const started = performance.now();
    const attributes = {
      [ATTR.operation]: 'appendMany',
      [ATTR.streamCount]: Array.isArray(appends) ? appends.length : 0,
      [ATTR.eventCount]: Array.isArray(appends) ? appends.reduce((n, a) => n + (Array.isArray(a?.events) ? a.events.length : 0), 0) : 0,
    };
    return t
      .span('eventfold appendMany', attributes, () => store.appendMany(appends), (span, results) => {
        if (results.length > 0) span.setAttribute(ATTR.position, Math.max(...results.map((r) => r.position)));
      }, SpanKind.CLIENT)
      .then(
        (results) => {
          t.appendDuration.record(performance.now() - started, { [ATTR.operation]: 'appendMany', [ATTR.outcome]: 'ok' });
          t.eventsAppended.add(results.reduce((n, r) => n + r.events.length, 0));
          return results;
        },
        (error: unknown) => {
          measureFailure(t, 'appendMany', started, error);
          throw error;
        },
      );
  };

  const readStream = (streamId: string, readOptions?: ReadStreamOptions): EventStream<RecordedEvent> =>
    !t.active ? store.readStream(streamId, readOptions) : tracedStream(t, 'eventfold readStream', { [ATTR.operation]: 'readStream', [ATTR.streamId]: streamId }, store.readStream(streamId, readOptions));

  const readAll = (readOptions?: ReadAllOptions): EventStream<RecordedEvent> =>
    !t.active ? store.readAll(readOptions) : tracedStream(
      t,
      'eventfold readAll',
      { [ATTR.operation]: 'readAll', [ATTR.fromPosition]: readOptions?.fromPosition ?? 1 },
      store.readAll(readOptions),
    );

  const streamVersion = (streamId: string): Promise<number> =>
    !t.active ? store.streamVersion(streamId) : t.span('eventfold streamVersion', { [ATTR.operation]: 'streamVersion', [ATTR.streamId]: streamId }, () => store.streamVersion(streamId), (span, v) =>
      span.setAttribute(ATTR.version, v),
    );

  const headPosition = (): Promise<number> =>
    !t.active ? store.headPosition() : t.span('eventfold headPosition', { [ATTR.operation]: 'headPosition' }, () => store.headPosition(), (span, p) =>
      span.setAttribute(ATTR.position, p),
    );

  const replaced: Record<PropertyKey, unknown> = { append, appendMany, readStream, readAll, streamVersion, headPosition, [INSTRUMENTED]: true };
  return new Proxy(store, {
    get(target, property) {
      if (Object.prototype.hasOwnProperty.call(replaced, property)) return replaced[property];
      // Symbol-keyed members are internal shortcuts past the port (the in-memory store's synchronous
      // append and read): hidden, so that every call goes through the traced methods.
      if (typeof property === 'symbol') return undefined;
      const value: unknown = Reflect.get(target, property, target);
      // Methods run against the real store, so private fields and `this` work as before.
      return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
    },
  });
}

function measureFailure(t: Telemetry, operation: string, started: number, error: unknown): void {
  const outcome = outcomeOf(error);
  t.appendDuration.record(performance.now() - started, { [ATTR.operation]: operation, [ATTR.outcome]: outcome });
  if (outcome === 'conflict') t.conflicts.add(1, { [ATTR.operation]: operation });
}

/** A span per iteration of the stream: from the first page asked for to the last one or an early stop. */
function tracedStream(
  t: Telemetry,
  name: string,
  attributes: Record<string, string | number>,
  inner: EventStream<RecordedEvent>,
): EventStream<RecordedEvent> {
  async function* pages(): AsyncGenerator<readonly RecordedEvent[]> {
    const span: Span = t.tracer.startSpan(name, { kind: SpanKind.CLIENT, attributes });
    let count = 0;
    let last: RecordedEvent | undefined;
    try {
      for await (const page of inner.pages()) {
        count += page.length;
        last = page[page.length - 1] ?? last;
        yield page;
      }
      if (span.isRecording()) span.setAttribute(ATTR.outcome, 'ok');
    } catch (error) {
      recordFailure(span, error);
      throw error;
    } finally {
      if (span.isRecording()) {
        span.setAttribute(ATTR.eventCount, count);
        if (last !== undefined) span.setAttributes({ [ATTR.position]: last.position, [ATTR.version]: last.version });
      }
      span.end();
    }
  }
  return {
    pages,
    async *[Symbol.asyncIterator]() {
      for await (const page of pages()) yield* page;
    },
    async toArray() {
      const all: RecordedEvent[] = [];
      for await (const page of pages()) all.push(...page);
      return all;
    },
  };
}
