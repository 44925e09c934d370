export { NatsEventStore, NATS_CAPABILITIES } from './nats-event-store.js';
export type { NatsConnectionSource, NatsEventStoreOptions, NatsStorage, NatsStreamOptions } from './options.js';
export { NatsStreamConfigError, NatsStreamMissingError } from './errors.js';
export { decodeStreamToken, encodeStreamToken } from './subjects.js';
export { POSITION_STRIDE } from './codec.js';
