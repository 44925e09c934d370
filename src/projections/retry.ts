export { backoffDelay, DEFAULT_RETRY_POLICY, resolveRetryPolicy, type RetryPolicy } from '../consumers/retry.js';
