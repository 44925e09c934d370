export {
  BrokerUnavailableError,
  EVENT_HEADERS,
  eventHeaders,
  MessageRefusedError,
  parseEnvelope,
  streamCategory,
  toEnvelope,
  type Broker,
  type EventEnvelope,
} from './broker.js';
export { assertInboxKey, InMemoryInbox, type Inbox, type InboxOutcome } from './inbox.js';
export { OutboxRelay, type OutboxRelayOptions } from './relay.js';
