export {
  ConsumerLoop,
  type ConsumerErrorInfo,
  type ConsumerLoopOptions,
  type ConsumerSession,
  type ConsumerState,
  type ConsumerWorker,
} from './consumer-loop.js';
export type { ConsumerLease, ConsumerLock, WakeUpSource } from './lock.js';
export { backoffDelay, DEFAULT_RETRY_POLICY, resolveRetryPolicy, type RetryPolicy } from './retry.js';
export { isTransientError, type TransientErrorClassifier } from './transient.js';
export { WakeUpChannel } from './wake-up-channel.js';
