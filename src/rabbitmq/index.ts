export { RabbitMqBroker, type RabbitMqBrokerOptions } from './rabbitmq-broker.js';
export { BrokerUnavailableError, MessageRefusedError, EVENT_HEADERS, parseEnvelope, type Broker, type EventEnvelope } from '../publishing/broker.js';
