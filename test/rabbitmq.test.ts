// Every test that talks to RabbitMQ, in one file so they run one after another: the relay's
// broker-restart test stops the broker (`rabbitmqctl stop_app`), which must not hit the others.
import './rabbitmq/broker.cases.js';
import './rabbitmq/relay.cases.js';
