import { createHash } from 'node:crypto';
import type { NatsConnection } from '@nats-io/transport-node';
import { JetStreamApiError, jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import type { KV, KvEntry } from '@nats-io/kv';
import { InvalidArgumentError, isEventfoldError, StoreClosedError, StoreCorruptError, StoreFailureError } from '../errors.js';
import { silentLogger, type Logger } from '../logging.js';
import { SubjectForgottenError } from '../privacy/errors.js';
import { assertValidSubjectId, isPossibleSubjectId, KEY_BYTES, newDataKey, type KeyStore, type SubjectKey } from '../privacy/key-store.js';
import { NatsStreamConfigError } from './errors.js';
import { openBucket, resolveBucket, type ResolvedBucket } from './kv.js';
import type { NatsStorage } from './options.js';
import { encodeToken } from './subjects.js';
import { describe, retryTransient } from './transient.js';

export interface NatsKeyStoreOptions {
  /** An open connection (for example `eventStore.connection`); the key store never closes it. */
  readonly connection: NatsConnection;
  /** KV bucket name. Default `eventfold_keys`. */
  readonly bucket?: string;
  readonly replicas?: number;
  readonly storage?: NatsStorage;
  /** How long a call keeps retrying transient faults (no leader, reconnecting). Default 30,000 ms. */
  readonly retryWindowMs?: number;
  /** Told about retried calls. Never given a key. */
  readonly logger?: Logger;
}

/**
 * Revisions the bucket keeps per subject. A key is at most two revisions (the key, then the
 * forgotten mark): the key's own message must never be dropped by the per-subject limit, which
 * removes messages without erasing their bytes. `forget` erases it explicitly instead.
 */
const KEY_HISTORY = 8;
const WRONG_LAST_SEQUENCE = 10071;
const NO_MESSAGE_FOUND = 10037;
/** Subject ids whose encoded token is longer are keyed by their SHA-256 (a NATS subject has a size limit). */
const MAX_TOKEN_LENGTH = 200;
const LOOKUP_CONCURRENCY = 16;

type Stored = { readonly status: 'active'; readonly key: Buffer } | { readonly status: 'forgotten'; readonly forgottenAt: Date };

/**
 * Data keys for crypto-shredding in a JetStream KV bucket, one key per data subject
 * (`s.<subject token>`, or `h.<sha-256>` for very long ids). Put the bucket on another account or
 * server (pass another connection) when the events' readers must not reach the keys.
 *
 * `forget` writes a "forgotten" mark as the subject's newest revision (a compare-and-set, so a
 * concurrent `keyFor` cannot slip a new key in), then deletes every older revision with
 * JetStream's secure erase, which overwrites the message's bytes in the stream's block files.
 * A plain KV delete or purge would only mark the message deleted and leave the key on disk.
 * With `replicas > 1`, each server's RAFT log holds the message until it is compacted, and disk
 * backups or snapshots of the servers' store directories taken before `forget` still hold the
 * key: keep their retention within your deletion deadline.
 */
export class NatsKeyStore implements KeyStore {
  private readonly connection: NatsConnection;
  private readonly bucketOptions: ResolvedBucket;
  private readonly retryWindowMs: number;
  private readonly logger: Logger;
  private opening: Promise<{ kv: KV; jsm: JetStreamManager }> | undefined;
  private closed = false;

  constructor(options: NatsKeyStoreOptions) {
    this.connection = options.connection;
    this.bucketOptions = resolveBucket(options, 'eventfold_keys');
    const window = options.retryWindowMs ?? 30_000;
    if (!Number.isSafeInteger(window) || window < 0) throw new InvalidArgumentError(`retryWindowMs must be an integer >= 0, got ${String(window)}.`);
    this.retryWindowMs = window;
    this.logger = options.logger ?? silentLogger;
  }

  static async create(options: NatsKeyStoreOptions): Promise<NatsKeyStore> {
    const store = new NatsKeyStore(options);
    await store.migrate();
    return store;
  }

  /** The KV bucket's name. */
  get bucket(): string {
    return this.bucketOptions.bucket;
  }

  /**
   * Creates the bucket, or checks an existing one (idempotent), and finishes forgets that were
   * interrupted after their mark (a crash, a lost connection): their keys' bytes are erased now.
   */
  async migrate(): Promise<void> {
    const { kv, jsm } = await this.open();
    await this.retry('finish interrupted forgets', () => this.eraseInterrupted(kv, jsm));
  }

  async keyFor(subjectId: string): Promise<Buffer> {
    this.assertOpen();
    assertValidSubjectId(subjectId);
    const name = keyOf(subjectId);
    const { kv } = await this.open();
    return this.retry('create a data key', async () => {
      for (let attempt = 0; attempt < 5; attempt++) {
        const stored = this.parse(await kv.get(name), subjectId);
        if (stored?.status === 'active') return stored.key;
        if (stored?.status === 'forgotten') throw new SubjectForgottenError(subjectId);
        const key = newDataKey();
        try {
          // Create-if-absent, enforced by the server: of concurrent first uses one wins, the others read its key.
          await kv.create(name, JSON.stringify({ v: 1, key: key.toString('base64'), createdAt: Date.now() }));
          return key;
        } catch (error) {
          if (!isWrongSequence(error)) throw error;
        }
      }
      throw new StoreFailureError(`NATS key store: the key of data subject '${subjectId}' kept changing while it was read; retry.`);
    });
  }

  async lookup(subjectIds: readonly string[]): Promise<ReadonlyMap<string, SubjectKey>> {
    this.assertOpen();
    const found = new Map<string, SubjectKey>();
    // An id no key can have been stored for is absent, like any unknown subject (ids come from stored, maybe hostile, data).
    const ids = [...new Set(subjectIds)].filter(isPossibleSubjectId);
    if (ids.length === 0) return found;
    const { kv } = await this.open();
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < ids.length) {
        const id = ids[next++]!;
        const entry = await this.retry('read data keys', () => kv.get(keyOf(id)));
        const stored = this.parse(entry, id);
        if (stored !== undefined) found.set(id, stored);
      }
    };
    await Promise.all(Array.from({ length: Math.min(LOOKUP_CONCURRENCY, ids.length) }, worker));
    return found;
  }

  async forget(subjectId: string): Promise<void> {
    this.assertOpen();
    assertValidSubjectId(subjectId);
    const name = keyOf(subjectId);
    const { kv, jsm } = await this.open();
    await this.retry('forget a data subject', async () => {
      await this.markForgotten(kv, name, subjectId);
      // Also on a repeat: a forget interrupted after its mark erases what it left behind.
      await this.eraseOlderRevisions(kv, jsm, name);
    });
  }

  async close(): Promise<void> {
    this.closed = true;
  }

  private async markForgotten(kv: KV, name: string, subjectId: string): Promise<void> {
    const mark = JSON.stringify({ v: 1, forgottenAt: Date.now() });
    for (let attempt = 0; attempt < 5; attempt++) {
      const entry = await kv.get(name);
      // A damaged entry does not block forgetting: it is replaced by the mark and erased like a key.
      if (isForgottenMark(entry)) return;
      try {
        if (entry === null || entry.operation !== 'PUT') await kv.create(name, mark);
        else await kv.update(name, mark, entry.revision);
        return;
      } catch (error) {
        if (!isWrongSequence(error)) throw error;
      }
    }
    throw new StoreFailureError(`NATS key store: the key of data subject '${subjectId}' kept changing while it was forgotten; retry.`);
  }

  private async eraseOlderRevisions(kv: KV, jsm: JetStreamManager, name: string): Promise<void> {
    const revisions: number[] = [];
    for await (const entry of await kv.history({ key: name })) {
      if (!isForgottenMark(entry)) revisions.push(entry.revision);
    }
    for (const revision of revisions) {
      try {
        await jsm.streams.deleteMessage(`KV_${this.bucketOptions.bucket}`, revision, true);
      } catch (error) {
        if (!(error instanceof JetStreamApiError && error.code === NO_MESSAGE_FOUND)) throw error;
      }
    }
  }

  /**
   * A subject keeps one message (its key, or its mark) except while it is forgotten: a mark over
   * revisions left behind means the forget stopped before its erase (nobody would forget that
   * subject again, its lookups say "forgotten"). One stream info when there are none.
   */
  private async eraseInterrupted(kv: KV, jsm: JetStreamManager): Promise<void> {
    const stream = `KV_${this.bucketOptions.bucket}`;
    const { state } = await jsm.streams.info(stream);
    if (state.num_subjects === undefined || state.messages <= state.num_subjects) return;
    const prefix = `$KV.${this.bucketOptions.bucket}.`;
    const detailed = await jsm.streams.info(stream, { subjects_filter: `${prefix}>` });
    for (const [subject, count] of Object.entries(detailed.state.subjects ?? {})) {
      if (count < 2 || !subject.startsWith(prefix)) continue;
      const name = subject.slice(prefix.length);
      if (isForgottenMark(await kv.get(name))) await this.eraseOlderRevisions(kv, jsm, name);
    }
  }

  /** A bucket entry as a key or a forgotten mark; undefined when absent. Never echoes the value. */
  private parse(entry: KvEntry | null, subjectId: string): Stored | undefined {
    if (entry === null || entry.operation !== 'PUT') return undefined;
    let record: { key?: unknown; forgottenAt?: unknown };
    try {
      record = entry.json();
    } catch {
      record = {};
    }
    if (typeof record.forgottenAt === 'number') return { status: 'forgotten', forgottenAt: new Date(record.forgottenAt) };
    if (typeof record.key === 'string') {
      const key = Buffer.from(record.key, 'base64');
      if (key.length === KEY_BYTES) return { status: 'active', key };
    }
    throw new StoreCorruptError(
      `NATS key store: the entry of data subject '${subjectId}' in KV bucket '${this.bucketOptions.bucket}' is not a key record. ` +
        `Restore the bucket from a backup.`,
    );
  }

  private open(): Promise<{ kv: KV; jsm: JetStreamManager }> {
    this.assertOpen();
    if (this.opening !== undefined) return this.opening;
    const opening = this.retry('open the key bucket', async () => {
      const kv = await openBucket(this.connection, this.bucketOptions, KEY_HISTORY);
      const status = await kv.status();
      const problems: string[] = [];
      if (status.history < 2) problems.push(`it keeps ${status.history} revision(s) per key; forgetting needs at least 2 to erase the key itself`);
      if (status.streamInfo.config.deny_delete === true) problems.push('it denies message deletes, which forgetting needs to erase keys');
      // Republished entries carry the keys to subscribers and streams that forget cannot erase.
      if (status.streamInfo.config.republish !== undefined) problems.push('it republishes its entries, which would copy keys beyond the reach of forget');
      if (problems.length > 0) throw new NatsStreamConfigError(`KV_${this.bucketOptions.bucket}`, problems);
      return { kv, jsm: await jetstreamManager(this.connection, { checkAPI: false }) };
    });
    // A failed open is tried again by the next call.
    opening.catch(() => {
      if (this.opening === opening) this.opening = undefined;
    });
    this.opening = opening;
    return opening;
  }

  private async retry<T>(what: string, attempt: () => Promise<T>): Promise<T> {
    try {
      return await retryTransient(what, this.retryWindowMs, this.logger, attempt, () => this.closed, () => new StoreClosedError('NATS key store'));
    } catch (error) {
      if (isEventfoldError(error)) throw error;
      throw new StoreFailureError(`NATS key store: could not ${what}: ${describe(error)}`, { cause: error });
    }
  }

  private assertOpen(): void {
    if (this.closed) throw new StoreClosedError('NATS key store');
  }
}

function isForgottenMark(entry: KvEntry | null): boolean {
  if (entry === null || entry.operation !== 'PUT') return false;
  try {
    return typeof entry.json<{ forgottenAt?: unknown }>().forgottenAt === 'number';
  } catch {
    return false;
  }
}

function isWrongSequence(error: unknown): boolean {
  return error instanceof JetStreamApiError && (error.code === WRONG_LAST_SEQUENCE || error.code === 10164);
}

/** The KV key of a subject: its subject token, or a hash when the token would be too long. */
function keyOf(subjectId: string): string {
  const token = encodeToken(subjectId);
  return token.length <= MAX_TOKEN_LENGTH ? `s.${token}` : `h.${createHash('sha256').update(subjectId, 'utf8').digest('hex')}`;
}
