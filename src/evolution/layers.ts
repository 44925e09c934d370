import type { Aggregate } from '../aggregate/aggregate.js';
import { AggregateNotFoundError } from '../errors.js';
import type { AnyEvent } from '../events/types.js';
import { CryptoShreddingEventStore, type PersonalDataPolicy } from '../privacy/crypto-shredding.js';
import type { KeyStore } from '../privacy/key-store.js';
import type { Repository } from '../repository/repository.js';
import type { EventStore } from '../store/event-store.js';
import { LifecycleEventStore, versionAt } from './lifecycle.js';
import { UpcastingEventStore, type Upcasters } from './upcasting.js';
import { ValidatingEventStore, type SchemaMap, type ValidatingEventStoreOptions } from './validation.js';

export interface EventStoreLayersOptions<E extends AnyEvent> {
  /** Validate appended events (Standard Schema per event type). */
  readonly schemas?: SchemaMap;
  readonly validation?: ValidatingEventStoreOptions;
  /** Record schema versions on append and upcast on read. */
  readonly upcasters?: Upcasters;
  /** Encrypt personal fields per data subject (crypto-shredding). */
  readonly personalData?: { readonly keys: KeyStore; readonly policy: PersonalDataPolicy<E> };
}

export interface EventStoreLayers<E extends AnyEvent> {
  /** The store to use everywhere (repositories, projection runners, queries). */
  readonly store: LifecycleEventStore;
  /** The crypto-shredding layer, for `forget(subjectId)`; undefined without `personalData`. */
  readonly privacy: CryptoShreddingEventStore<E> | undefined;
}

/**
 * Stacks the evolution and privacy layers over any store in the one order that works:
 * tombstones → validation → upcasting → encryption → the store. Appends are validated in the
 * current shape, stamped with their schema version, then encrypted; reads are decrypted (or
 * redacted), then upcast, so upcasters and handlers see plain values of the current shape.
 */
export function layerEventStore<E extends AnyEvent = AnyEvent>(inner: EventStore, options: EventStoreLayersOptions<E>): EventStoreLayers<E> {
  const privacy = options.personalData === undefined ? undefined : new CryptoShreddingEventStore<E>(inner, options.personalData.keys, options.personalData.policy);
  let store: EventStore = privacy ?? inner;
  if (options.upcasters !== undefined) store = new UpcastingEventStore(store, options.upcasters);
  if (options.schemas !== undefined) store = new ValidatingEventStore(store, options.schemas, options.validation);
  return { store: new LifecycleEventStore(store), privacy };
}

/**
 * Time travel by time: the aggregate as it was at `at` (its events recorded at or before it).
 * Rejects with `AggregateNotFoundError` when it had no events yet.
 */
export async function loadAsOf<A extends Aggregate<AnyEvent>>(repository: Repository<A>, store: EventStore, id: string, at: Date): Promise<A> {
  const streamId = repository.streamIdOf(id);
  const version = await versionAt(store, streamId, at);
  // Not there yet at that time: as missing as a stream without events.
  if (version === 0) throw new AggregateNotFoundError(id, streamId);
  return repository.load(id, { version });
}
