import { describe, it } from 'vitest';
import { describeEventStoreConformance } from '../src/testing/index.js';
import {
  CryptoShreddingEventStore,
  IdempotentCommands,
  InMemoryEventStore,
  InMemoryKeyStore,
  LifecycleEventStore,
  ValidatingEventStore,
  type EventLimits,
} from '../src/index.js';

/**
 * The layers keep the port's promises: the event store conformance suite passes through
 * tombstones, validation (letting unknown types through), crypto-shredding (with personal fields on a type the suite never writes) and the
 * idempotency store, so adapters stay correct with them stacked on top.
 */
function layered(limits?: Partial<EventLimits>) {
  const inner = new InMemoryEventStore(limits === undefined ? { pageSize: 7 } : { limits, pageSize: 7 });
  const privacy = new CryptoShreddingEventStore(inner, new InMemoryKeyStore(), {
    PersonalThing: { subject: (data: unknown) => String((data as { id: unknown }).id), fields: ['secret'] },
  });
  return new IdempotentCommands(new LifecycleEventStore(new ValidatingEventStore(privacy, {}, { unknownTypes: 'allow' }))).store;
}

describeEventStoreConformance('evolution and privacy layers over InMemoryEventStore', () => layered(), {
  framework: { describe, it },
  createStoreWithLimits: (limits) => layered(limits),
});
