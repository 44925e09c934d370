import { connect, type NatsConnection } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';
import { NatsEventStore, type NatsEventStoreOptions } from '../../src/nats/index.js';
import { NATS_URL } from './nats-cluster.js';

export { NATS_URL };

const runTag = `${Date.now().toString(36)}_${process.pid.toString(36)}`;
let counter = 0;

/** A stream name and subject prefix no other test, file or run uses. */
export function uniqueStreamNames(tag = 't'): { stream: string; subjectPrefix: string } {
  const n = ++counter;
  const clean = tag.replace(/[^A-Za-z0-9_-]/g, '_').slice(0, 16);
  return { stream: `EFT_${runTag}_${clean}_${n}`, subjectPrefix: `eft.${runTag}.${clean}${n}` };
}

/** Fresh stores on the shared server (each its own stream), deleted by `cleanup()`. */
export function natsStores(tag: string, defaults: Partial<NatsEventStoreOptions> = {}) {
  const streams: string[] = [];
  let admin: NatsConnection | undefined;
  return {
    async create(options: Partial<NatsEventStoreOptions> = {}): Promise<NatsEventStore> {
      const names = uniqueStreamNames(tag);
      streams.push(names.stream);
      return NatsEventStore.create({ servers: NATS_URL, storage: 'memory', ...names, ...defaults, ...options } as NatsEventStoreOptions);
    },
    /** Names made elsewhere, whose stream `cleanup()` deletes too. */
    track<T extends { stream: string }>(names: T): T {
      streams.push(names.stream);
      return names;
    },
    /** A fresh KV bucket name, deleted by `cleanup()`. */
    bucket(kind: string): string {
      const name = `${uniqueStreamNames(kind).stream}_kv`;
      streams.push(`KV_${name}`);
      return name;
    },
    async cleanup(): Promise<void> {
      admin ??= await connect({ servers: NATS_URL });
      const jsm = await jetstreamManager(admin, { checkAPI: false });
      for (const stream of streams.splice(0)) await jsm.streams.delete(stream).catch(() => false);
      await admin.close();
      admin = undefined;
    },
  };
}
