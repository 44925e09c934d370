export { ATTR, INSTRUMENTATION_SCOPE, type Outcome, type TelemetryOptions } from './telemetry.js';
export { instrumentEventStore } from './event-store.js';
export { instrumentRepository } from './repository.js';
export { commandTelemetry } from './command-bus.js';
export { observeProjection } from './projection.js';
export { projectionBatchTelemetry } from './projection-batches.js';
