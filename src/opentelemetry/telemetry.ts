import {
  createNoopMeter,
  metrics,
  ProxyTracerProvider,
  SpanKind,
  SpanStatusCode,
  trace,
  type Attributes,
  type Counter,
  type Histogram,
  type Meter,
  type MeterProvider,
  type Span,
  type Tracer,
  type TracerProvider,
} from '@opentelemetry/api';
import { isEventfoldError } from '../errors.js';

export const INSTRUMENTATION_SCOPE = 'eventfold';

export interface TelemetryOptions {
  /** Default: the global provider (`trace.setGlobalTracerProvider`, or the SDK's `register()`). */
  readonly tracerProvider?: TracerProvider;
  /** Default: the global provider (`metrics.setGlobalMeterProvider`). */
  readonly meterProvider?: MeterProvider;
}

/** Attribute names eventfold puts on spans and metrics. Stable: dashboards depend on them. */
export const ATTR = Object.freeze({
  operation: 'eventfold.operation',
  streamId: 'eventfold.stream.id',
  streamCount: 'eventfold.stream.count',
  expectedVersion: 'eventfold.expected_version',
  version: 'eventfold.stream.version',
  actualVersion: 'eventfold.actual_version',
  position: 'eventfold.position',
  fromPosition: 'eventfold.from_position',
  eventCount: 'eventfold.event.count',
  outcome: 'eventfold.outcome',
  errorCode: 'eventfold.error.code',
  commandType: 'eventfold.command.type',
  commandId: 'eventfold.command.id',
  correlationId: 'eventfold.correlation.id',
  aggregateType: 'eventfold.aggregate.type',
  aggregateId: 'eventfold.aggregate.id',
  projection: 'eventfold.projection.name',
});

/** 'ok', 'conflict' (an optimistic concurrency check failed: expected, not a fault) or 'error'. */
export type Outcome = 'ok' | 'conflict' | 'error';

export function outcomeOf(error: unknown): Outcome {
  return isEventfoldError(error, 'CONCURRENCY_CONFLICT') || isEventfoldError(error, 'AGGREGATE_ALREADY_EXISTS') ||
    isEventfoldError(error, 'STREAM_ALREADY_EXISTS')
    ? 'conflict'
    : 'error';
}

/** The tracer, meter and instruments one instrumented object uses. */
// The no-op provider behind a global ProxyTracerProvider that has no SDK registered yet.
const NOOP_TRACER_PROVIDER_CLASS = new ProxyTracerProvider().getDelegate().constructor;

export class Telemetry {
  private readonly tracerProvider: TracerProvider;
  private readonly metering: boolean;
  readonly tracer: Tracer;
  readonly meter: Meter;
  readonly appendDuration: Histogram;
  readonly conflicts: Counter;
  readonly eventsAppended: Counter;
  readonly commandDuration: Histogram;

  constructor(options: TelemetryOptions = {}) {
    this.tracerProvider = options.tracerProvider ?? trace.getTracerProvider();
    this.tracer = this.tracerProvider.getTracer(INSTRUMENTATION_SCOPE);
    this.meter = (options.meterProvider ?? metrics.getMeterProvider()).getMeter(INSTRUMENTATION_SCOPE);
    this.metering = this.meter !== createNoopMeter();
    this.appendDuration = this.meter.createHistogram('eventfold.append.duration', {
      description: 'Time from calling append (or appendMany) to its durable commit or its rejection.',
      unit: 'ms',
    });
    this.conflicts = this.meter.createCounter('eventfold.append.conflicts', {
      description: 'Appends refused because the expected version did not match.',
    });
    this.eventsAppended = this.meter.createCounter('eventfold.events.appended', {
      description: 'Events committed by appends.',
    });
    this.commandDuration = this.meter.createHistogram('eventfold.command.duration', {
      description: 'Time to dispatch and handle one command.',
      unit: 'ms',
    });
  }

  /**
   * False while neither a tracer nor a meter provider is registered: instrumented calls then go
   * straight to the real object, so instrumentation without an SDK costs one check per call.
   * Checked per call because an SDK may register its global tracer provider after start-up.
   */
  get active(): boolean {
    if (this.metering) return true;
    const provider = this.tracerProvider;
    return !(provider instanceof ProxyTracerProvider) || provider.getDelegate().constructor !== NOOP_TRACER_PROVIDER_CLASS;
  }

  /**
   * Runs `work` in an active span named `name`. Attributes that cost something to compute are
   * added through `onResult` only when the span is recording, so a tracer without a provider
   * (a no-op) costs one span object and nothing else.
   */
  async span<T>(
    name: string,
    attributes: Attributes,
    work: (span: Span) => Promise<T>,
    onResult?: (span: Span, result: T) => void,
    kind: SpanKind = SpanKind.INTERNAL,
  ): Promise<T> {
    return this.tracer.startActiveSpan(name, { kind, attributes }, async (span) => {
      try {
        const result = await work(span);
        if (span.isRecording()) {
          span.setAttribute(ATTR.outcome, 'ok');
          onResult?.(span, result);
        }
        return result;
      } catch (error) {
        recordFailure(span, error);
        throw error;
      } finally {
        span.end();
      }
    });
  }
}

export function recordFailure(span: Span, error: unknown): void {
  if (!span.isRecording()) return;
  const outcome = outcomeOf(error);
  span.setAttribute(ATTR.outcome, outcome);
  const code = (error as { code?: unknown } | null)?.code;
  if (isEventfoldError(error) && typeof code === 'string') span.setAttribute(ATTR.errorCode, code);
  if (error instanceof Error) span.recordException(error);
  const actual = (error as { actualVersion?: unknown } | null)?.actualVersion;
  if (outcome === 'conflict' && typeof actual === 'number') span.setAttribute(ATTR.actualVersion, actual);
  span.setStatus({ code: SpanStatusCode.ERROR, message: error instanceof Error ? error.message : String(error) });
}
