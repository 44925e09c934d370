import type { NatsConnection } from '@nats-io/transport-node';
import { Kvm, type KV } from '@nats-io/kv';
import { InvalidArgumentError } from '../errors.js';
import { NatsStreamConfigError } from './errors.js';
import type { NatsStorage } from './options.js';
import { assertValidNatsName } from './subjects.js';

export interface BucketOptions {
  /** KV bucket name (letters, digits, `_`, `-`). Default: the store's own. */
  readonly bucket?: string;
  /** Replicas (1 to 5). Default 1. */
  readonly replicas?: number;
  readonly storage?: NatsStorage;
}

export interface ResolvedBucket {
  readonly bucket: string;
  readonly replicas: number;
  readonly storage: NatsStorage;
}

/** Validates a store's bucket options, `defaultBucket` naming the bucket when none is given. */
export function resolveBucket(options: BucketOptions, defaultBucket: string): ResolvedBucket {
  const bucket = options.bucket ?? defaultBucket;
  assertValidNatsName('bucket', bucket);
  const replicas = options.replicas ?? 1;
  if (!Number.isSafeInteger(replicas) || replicas < 1 || replicas > 5) {
    throw new InvalidArgumentError(`replicas must be an integer from 1 to 5, got ${String(replicas)}.`);
  }
  const storage = options.storage ?? 'file';
  if (storage !== 'file' && storage !== 'memory') throw new InvalidArgumentError(`storage must be 'file' or 'memory', got ${String(storage)}.`);
  return { bucket, replicas, storage };
}

/**
 * Opens a KV bucket, creating it when missing (idempotent). Reads go to the stream leader
 * (`allow_direct: false`) so a read right after a write sees it. An existing bucket with another
 * replica count or storage is a `NatsStreamConfigError`.
 */
export async function openBucket(connection: NatsConnection, options: ResolvedBucket, history = 1): Promise<KV> {
  const kvm = new Kvm(connection);
  let kv: KV;
  try {
    kv = await kvm.open(options.bucket);
    const status = await kv.status();
    const problems: string[] = [];
    if (status.replicas !== options.replicas) problems.push(`it has ${status.replicas} replica(s), configured for ${options.replicas}`);
    if (status.storage !== options.storage) problems.push(`storage is '${status.storage}', configured for '${options.storage}'`);
    if (status.ttl > 0) problems.push('its values expire (ttl is set)');
    if (problems.length > 0) throw new NatsStreamConfigError(`KV_${options.bucket}`, problems);
    return kv;
  } catch (error) {
    if (error instanceof NatsStreamConfigError) throw error;
  }
  kv = await kvm.create(options.bucket, {
    replicas: options.replicas,
    storage: options.storage as never,
    history,
    allow_direct: false,
  });
  return kv;
}
