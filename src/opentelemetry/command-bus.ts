import { SpanKind } from '@opentelemetry/api';
import type { CommandMiddleware } from '../commands/command-bus.js';
import { ATTR, outcomeOf, Telemetry, type TelemetryOptions } from './telemetry.js';

/**
 * Command bus middleware: one span per dispatched command (`eventfold command <type>`) with its
 * type, id and correlation id, and the `eventfold.command.duration` histogram. Add it first
 * (`bus.use(commandTelemetry())`) so the span covers the other middleware and the handler; the
 * handler's repository and store spans become its children.
 */
export function commandTelemetry(options: TelemetryOptions = {}): CommandMiddleware {
  const t = new Telemetry(options);
  return (command, context, next) => {
    if (!t.active) return next();
    const started = performance.now();
    const attributes = {
      [ATTR.commandType]: command.type,
      [ATTR.commandId]: context.commandId,
      [ATTR.correlationId]: context.correlationId,
    };
    return t.span(`eventfold command ${command.type}`, attributes, () => next(), undefined, SpanKind.SERVER).then(
      (result) => {
        t.commandDuration.record(performance.now() - started, { [ATTR.commandType]: command.type, [ATTR.outcome]: 'ok' });
        return result;
      },
      (error: unknown) => {
        t.commandDuration.record(performance.now() - started, { [ATTR.commandType]: command.type, [ATTR.outcome]: outcomeOf(error) });
        throw error;
      },
    );
  };
}
