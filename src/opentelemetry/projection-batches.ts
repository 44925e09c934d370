import { SpanKind, SpanStatusCode } from '@opentelemetry/api';
import type { ProjectionBatch } from '../projections/runner-types.js';
import { ATTR, Telemetry, type TelemetryOptions } from './telemetry.js';

/**
 * An `onBatch` hook for projection runners, subscriptions, the outbox relay and process managers
 * (they share the runner): one span per committed batch (`eventfold projection.batch`, with the
 * name, the positions it moved across and the events applied) and the
 * `eventfold.projection.batch.duration` histogram. Spans carry the batch's real start and end.
 *
 * `new SqliteProjectionRunner(store, users, { onBatch: projectionBatchTelemetry() })`
 */
export function projectionBatchTelemetry(options: TelemetryOptions = {}): (batch: ProjectionBatch) => void {
  const t = new Telemetry(options);
  const duration = t.meter.createHistogram('eventfold.projection.batch.duration', {
    description: 'Time to apply and commit one batch of a projection, subscription or relay.',
    unit: 'ms',
  });
  const events = t.meter.createCounter('eventfold.projection.events', { description: 'Events applied by projections, subscriptions and relays.' });
  return (batch) => {
    if (!t.active) return;
    const attributes = { [ATTR.projection]: batch.projection };
    duration.record(batch.durationMs, attributes);
    events.add(batch.events, attributes);
    const span = t.tracer.startSpan('eventfold projection.batch', {
      kind: SpanKind.INTERNAL,
      startTime: batch.startedAt,
      attributes: {
        ...attributes,
        [ATTR.fromPosition]: batch.fromPosition,
        [ATTR.position]: batch.toPosition,
        [ATTR.eventCount]: batch.events,
        'eventfold.projection.rebuilding': batch.rebuilding,
        [ATTR.outcome]: 'ok',
      },
    });
    span.setStatus({ code: SpanStatusCode.UNSET });
    span.end(batch.startedAt + batch.durationMs);
  };
}
