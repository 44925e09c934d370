import { afterAll, describe, it } from 'vitest';
import { describeEventStoreConformance } from '../src/testing/conformance.js';
import { NATS_CAPABILITIES } from '../src/nats/index.js';
import { natsStores } from './support/nats.js';

// Every store its own JetStream stream on the shared server, with a small page size so reads span
// several consumer pulls.
const stores = natsStores('conf', { pageSize: 7 });
afterAll(() => stores.cleanup());

describeEventStoreConformance('NatsEventStore (single server)', () => stores.create(), {
  framework: { describe, it },
  capabilities: NATS_CAPABILITIES,
  createStoreWithLimits: (limits) => stores.create({ limits }),
  propertyRuns: 15,
});

// The mode a replicated stream uses by default: the server checks the whole stream's last sequence.
describeEventStoreConformance("NatsEventStore (single server, expectedSequence 'stream')", () => stores.create({ expectedSequence: 'stream' }), {
  framework: { describe, it },
  capabilities: NATS_CAPABILITIES,
  createStoreWithLimits: (limits) => stores.create({ limits, expectedSequence: 'stream' }),
  propertyRuns: 10,
});
