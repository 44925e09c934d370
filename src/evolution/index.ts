export { EventStoreDecorator } from '../store/decorator.js';
export * from './errors.js';
export type { StandardSchemaV1 } from './standard-schema.js';
export {
  defineSchemas,
  validateCommands,
  validated,
  validateWithSchema,
  ValidatingEventStore,
  type CommandsFromSchemas,
  type EventsFromSchemas,
  type SchemaMap,
  type ValidatingEventStoreOptions,
} from './validation.js';
export {
  schemaVersionOf,
  SCHEMA_VERSION_KEY,
  SPLIT_PART_KEY,
  Upcasters,
  UpcastingEventStore,
  type UpcastedEvent,
} from './upcasting.js';
export {
  COMMAND_ABANDONED,
  COMMAND_COMPLETED,
  COMMAND_RECEIVED,
  COMMAND_STREAM_PREFIX,
  IdempotentCommands,
  reservationStreamOf,
  type IdempotentCommandsOptions,
} from './idempotency.js';
export {
  isTombstone,
  LifecycleEventStore,
  PRUNED_EVENT,
  STREAM_DELETED,
  versionAt,
  type StreamPruning,
  type StreamState,
} from './lifecycle.js';
export { layerEventStore, loadAsOf, type EventStoreLayers, type EventStoreLayersOptions } from './layers.js';
export { InMemoryStreamPruning } from './in-memory-pruning.js';
