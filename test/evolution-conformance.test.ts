import { afterAll, describe, it } from 'vitest';
import { describeEventStoreConformance } from '../src/testing/index.js';
import {
  CryptoShreddingEventStore,
  IdempotentCommands,
  InMemoryEventStore,
  InMemoryKeyStore,
  LifecycleEventStore,
  ValidatingEventStore,
  type EventLimits,
  type EventStore,
} from '../src/index.js';
import { NATS_CAPABILITIES } from '../src/nats/index.js';
import { natsStores } from './support/nats.js';

/**
 * The layers keep the port's promises: the event store conformance suite passes through
 * tombstones, validation (letting unknown types through), crypto-shredding (with personal fields on a type the suite never writes) and the
 * idempotency store, so adapters stay correct with them stacked on top.
 */
function layeredOver(inner: EventStore) {
  const privacy = new CryptoShreddingEventStore(inner, new InMemoryKeyStore(), {
    PersonalThing: { subject: (data: unknown) => String((data as { id: unknown }).id), fields: ['secret'] },
  });
  return new IdempotentCommands(new LifecycleEventStore(new ValidatingEventStore(privacy, {}, { unknownTypes: 'allow' }))).store;
}

function layered(limits?: Partial<EventLimits>) {
  return layeredOver(new InMemoryEventStore(limits === undefined ? { pageSize: 7 } : { limits, pageSize: 7 }));
}

describeEventStoreConformance('evolution and privacy layers over InMemoryEventStore', () => layered(), {
  framework: { describe, it },
  createStoreWithLimits: (limits) => layered(limits),
});

// The same stack on JetStream (no atomic multi-stream append: the layers must keep refusing those),
// on streams created for pruning, whose readers look for rewrites at skipped sequences.
const nats = natsStores('evoconf', { pageSize: 7, allowPruning: true });
afterAll(() => nats.cleanup());

describeEventStoreConformance('evolution and privacy layers over NatsEventStore', async () => layeredOver(await nats.create()), {
  framework: { describe, it },
  capabilities: NATS_CAPABILITIES,
  createStoreWithLimits: async (limits) => layeredOver(await nats.create({ limits })),
  propertyRuns: 10,
});
