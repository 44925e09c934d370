import type { ObservableResult } from '@opentelemetry/api';
import type { EventStore } from '../store/event-store.js';
import { ATTR, Telemetry, type TelemetryOptions } from './telemetry.js';

/** What `observeProjection` reads from a runner: any projection runner's `status`. */
export interface ObservableProjectionRunner {
  readonly status: { readonly projection: string; readonly position: number; readonly state: string };
}

/**
 * Reports a running projection as metrics, read when the meter collects:
 * `eventfold.projection.lag` (events between the log's head and the checkpoint),
 * `eventfold.projection.position` (the checkpoint). The head is read from `store` at collection
 * time only, so an idle exporter costs nothing. Returns a function that stops the reporting.
 */
export function observeProjection(
  runner: ObservableProjectionRunner,
  store: Pick<EventStore, 'headPosition'>,
  options: TelemetryOptions = {},
): () => void {
  const t = new Telemetry(options);
  const lag = t.meter.createObservableGauge('eventfold.projection.lag', {
    description: 'Positions between the head of the log and the projection checkpoint.',
  });
  const position = t.meter.createObservableGauge('eventfold.projection.position', {
    description: 'The last log position the projection applied.',
  });
  const onLag = async (result: ObservableResult): Promise<void> => {
    const status = runner.status;
    try {
      const head = await store.headPosition();
      result.observe(Math.max(0, head - status.position), { [ATTR.projection]: status.projection, state: status.state });
    } catch {
      // An unreachable store has no head to compare with: report nothing rather than a wrong lag.
    }
  };
  const onPosition = (result: ObservableResult): void => {
    const status = runner.status;
    result.observe(status.position, { [ATTR.projection]: status.projection });
  };
  lag.addCallback(onLag);
  position.addCallback(onPosition);
  return () => {
    lag.removeCallback(onLag);
    position.removeCallback(onPosition);
  };
}
