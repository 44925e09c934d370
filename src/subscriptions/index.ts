export { Subscription, SubscriptionEventError, type SubscriptionOptions, type SubscriptionStart } from './subscription.js';
