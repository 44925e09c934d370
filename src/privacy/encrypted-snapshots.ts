import type { JsonValue } from '../events/types.js';
import type { Snapshot, SnapshotStore } from '../snapshots/snapshot-store.js';
import { decryptValue, encryptValue, isEnvelope } from './cipher.js';
import { EncryptionKeyMissingError } from './errors.js';
import type { KeyStore } from './key-store.js';

const STATE_PATH = '$snapshot';

/**
 * Snapshots hold folded state, personal data included. This layer encrypts the whole state with
 * the key of the stream's data subject (`subjectOf(streamId)`; streams it returns `undefined` for
 * are stored as they are). Once the subject is forgotten its snapshots load as `undefined`, so the
 * Repository folds from the events (which read redacted), and no new snapshot is saved for it.
 */
export class EncryptedSnapshotStore implements SnapshotStore {
  constructor(
    private readonly inner: SnapshotStore,
    private readonly keys: KeyStore,
    private readonly subjectOf: (streamId: string) => string | undefined,
  ) {}

  async save(snapshot: Snapshot): Promise<void> {
    const subject = this.subjectOf(snapshot.streamId);
    if (subject === undefined) return this.inner.save(snapshot);
    const known = (await this.keys.lookup([subject])).get(subject);
    if (known?.status === 'forgotten') return;
    const key = known?.key ?? (await this.keys.keyFor(subject));
    const state = encryptValue(key, subject, STATE_PATH, snapshot.state) as unknown as JsonValue;
    return this.inner.save({ ...snapshot, state });
  }

  async load(streamId: string, options?: { readonly maxVersion?: number; readonly schemaVersion?: number }): Promise<Snapshot | undefined> {
    const snapshot = await this.inner.load(streamId, options);
    if (snapshot === undefined || !isEnvelope(snapshot.state)) return snapshot;
    const envelope = snapshot.state;
    const known = (await this.keys.lookup([envelope.s])).get(envelope.s);
    if (known === undefined) throw new EncryptionKeyMissingError(envelope.s);
    if (known.status === 'forgotten') return undefined;
    return { ...snapshot, state: decryptValue(known.key, envelope, STATE_PATH) };
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}
