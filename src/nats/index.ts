export { NatsEventStore, NATS_CAPABILITIES } from './nats-event-store.js';
export type { NatsConnectionSource, NatsEventStoreOptions, NatsStorage, NatsStreamOptions } from './options.js';
export { NatsStreamConfigError, NatsStreamMissingError, UniqueValueTakenError } from './errors.js';
export { NatsSnapshotStore, type NatsSnapshotStoreOptions } from './snapshot-store.js';
export { NatsCheckpointStore, type NatsCheckpointStoreOptions } from './checkpoint-store.js';
export { NatsUniqueValues, type NatsUniqueValuesOptions } from './unique-values.js';
export { natsWakeUps } from './wake-ups.js';
export { decodeStreamToken, encodeStreamToken, encodeToken } from './subjects.js';
export { POSITION_STRIDE } from './codec.js';
