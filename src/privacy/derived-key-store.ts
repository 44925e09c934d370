import { createHmac } from 'node:crypto';
import { InvalidArgumentError } from '../errors.js';
import { KEY_BYTES, type KeyStore, type SubjectKey } from './key-store.js';

/**
 * Turns the per-subject material a key store keeps into the data key. Implement it with a key
 * management service (an HMAC or encrypt call under a master key that never leaves the KMS), or
 * with `hmacKeyDerivation` over a master key you hold elsewhere.
 */
export type KeyDerivation = (material: Buffer, subjectId: string) => Promise<Buffer>;

/** HMAC-SHA-256 of the subject's material under `masterKey` (32 bytes or more). */
export function hmacKeyDerivation(masterKey: Buffer): KeyDerivation {
  if (!Buffer.isBuffer(masterKey) || masterKey.length < KEY_BYTES) {
    throw new InvalidArgumentError(`hmacKeyDerivation needs a master key of at least ${KEY_BYTES} bytes.`);
  }
  const key = Buffer.from(masterKey);
  return async (material, subjectId) => createHmac('sha256', key).update(material).update('\u0000').update(subjectId, 'utf8').digest();
}

/**
 * A key store whose stored keys are only material: the data key is `derive(material, subject)`,
 * for example under a KMS master key. Whoever copies the key store's database (or its backups)
 * without access to the KMS cannot decrypt anything; forgetting still deletes the material, after
 * which no one can, the KMS included.
 */
export class DerivedKeyStore implements KeyStore {
  constructor(
    private readonly inner: KeyStore,
    private readonly derive: KeyDerivation,
  ) {}

  async keyFor(subjectId: string): Promise<Buffer> {
    return this.checked(await this.derive(await this.inner.keyFor(subjectId), subjectId));
  }

  async lookup(subjectIds: readonly string[]): Promise<ReadonlyMap<string, SubjectKey>> {
    const found = new Map<string, SubjectKey>();
    for (const [subjectId, entry] of await this.inner.lookup(subjectIds)) {
      found.set(subjectId, entry.status === 'forgotten' ? entry : { status: 'active', key: this.checked(await this.derive(entry.key, subjectId)) });
    }
    return found;
  }

  forget(subjectId: string): Promise<void> {
    return this.inner.forget(subjectId);
  }

  close(): Promise<void> {
    return this.inner.close();
  }

  private checked(key: Buffer): Buffer {
    if (!Buffer.isBuffer(key) || key.length !== KEY_BYTES) {
      throw new InvalidArgumentError(`A key derivation must return ${KEY_BYTES} bytes (an AES-256 key).`);
    }
    return key;
  }
}
