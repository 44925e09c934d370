export * from './errors.js';
export {
  defineProjection,
  applyEventsSync,
  applyEventsAsync,
  type MaybePromise,
  type Projection,
  type ProjectionDefinition,
  type ProjectionHandler,
  type ProjectionHandlers,
  type UnknownEventPolicy,
} from './projection.js';
export type { Checkpoint, DeliveryGuarantee, ProjectionLease, ProjectionLock, ProjectionTarget, WakeUpSource } from './target.js';
export { InMemoryCheckpointStore, type CheckpointStore, type StoredCheckpoint } from './checkpoint-store.js';
export { DEFAULT_RETRY_POLICY, type RetryPolicy } from './retry.js';
export {
  InMemoryDeadLetterStore,
  type DeadLetter,
  type DeadLetterListOptions,
  type DeadLetterQueue,
  type DeadLetterStore,
  type DeadLetterWrite,
  type PoisonEventPolicy,
  type StandaloneDeadLetterStore,
} from './dead-letters.js';
export { MAX_STORED_ERROR_LENGTH, type StoredRunnerError } from './runner-error.js';
export { readProjectionStatus, type StoredProjectionStatus } from './status.js';
export type { ProjectionProgress } from './progress.js';
export {
  ProjectionRunner,
  type ProjectionBatch,
  type ProjectionErrorInfo,
  type ProjectionRunnerOptions,
  type ProjectionRunnerSettings,
  type ProjectionState,
  type ProjectionStatus,
} from './runner.js';
export { AtLeastOnceTarget, type AtLeastOnceTargetOptions } from './at-least-once-target.js';
export {
  InMemoryReadModel,
  InMemoryReadModelTransaction,
  type ReadonlyTable,
  type WritableTable,
} from './in-memory-read-model.js';
export {
  addInlineProjection,
  inMemoryWakeUps,
  InMemoryProjectionLock,
  InMemoryProjectionRunner,
  InMemoryProjectionTarget,
  type InMemoryProjectionContext,
  type InMemoryProjectionRunnerOptions,
} from './in-memory.js';
