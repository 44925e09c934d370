export { Subscription, SubscriptionEventError, type SubscriptionOptions, type SubscriptionStart } from './subscription.js';
export {
  defineProcessManager,
  ProcessManager,
  processManagerCommandId,
  type ProcessManagerDefinition,
  type ProcessManagerOptions,
  type Reaction,
} from './process-manager.js';
