import { randomBytes } from 'node:crypto';
import { InvalidArgumentError, StoreClosedError } from '../errors.js';
import { SubjectForgottenError } from './errors.js';

/** Bytes of an AES-256 key. */
export const KEY_BYTES = 32;

/** What a key store knows about one data subject. */
export type SubjectKey =
  | { readonly status: 'active'; readonly key: Buffer }
  | { readonly status: 'forgotten'; readonly forgottenAt: Date };

/**
 * Keeps one data key per data subject. Implemented in memory, on SQLite (`SqliteKeyStore`) and
 * PostgreSQL (`PostgresKeyStore`); a KMS-backed store implements the same four methods (e.g.
 * storing each data key wrapped by a KMS master key, and unwrapping it in `lookup`).
 *
 * Contract:
 * - `keyFor` returns the subject's key, creating it on first use; concurrent first uses agree on
 *   one key. It rejects with `SubjectForgottenError` once the subject was forgotten.
 * - `lookup` reports each subject it knows as active or forgotten; a subject it never saw is
 *   absent from the map (a lost key store, which readers report as `EncryptionKeyMissingError`).
 * - `forget` destroys the key for good and remembers that the subject was forgotten.
 * - Keys never appear in errors or logs.
 */
export interface KeyStore {
  keyFor(subjectId: string): Promise<Buffer>;
  lookup(subjectIds: readonly string[]): Promise<ReadonlyMap<string, SubjectKey>>;
  forget(subjectId: string): Promise<void>;
  close(): Promise<void>;
}

export function assertValidSubjectId(subjectId: unknown): asserts subjectId is string {
  if (typeof subjectId !== 'string' || subjectId.length === 0 || subjectId.length > 500) {
    throw new InvalidArgumentError(`A data subject id must be a string of 1–500 characters, got ${typeof subjectId === 'string' ? `${subjectId.length} characters` : typeof subjectId}.`);
  }
  // Stored and hashed as UTF-8, where every lone surrogate becomes U+FFFD: 'a\uD800' and
  // 'a\uFFFD' would share one key (and forgetting one would shred the other).
  if (!(subjectId as string & { isWellFormed(): boolean }).isWellFormed()) {
    throw new InvalidArgumentError('A data subject id must be valid Unicode, got one with a lone UTF-16 surrogate.');
  }
}

/** False for an id no key can have been stored for (lookups take ids from stored, maybe hostile, data). */
export function isPossibleSubjectId(id: unknown): id is string {
  return typeof id === 'string' && id.length > 0 && id.length <= 500 && (id as string & { isWellFormed(): boolean }).isWellFormed();
}

/** A fresh random AES-256 key. */
export function newDataKey(): Buffer {
  return randomBytes(KEY_BYTES);
}

/** Keys in process memory: for tests and prototypes (they are gone when the process ends). */
export class InMemoryKeyStore implements KeyStore {
  private readonly keys = new Map<string, { key: Buffer | undefined; forgottenAt: Date | undefined }>();
  private closed = false;

  async keyFor(subjectId: string): Promise<Buffer> {
    this.assertOpen();
    assertValidSubjectId(subjectId);
    let entry = this.keys.get(subjectId);
    if (entry === undefined) {
      entry = { key: newDataKey(), forgottenAt: undefined };
      this.keys.set(subjectId, entry);
    }
    if (entry.key === undefined) throw new SubjectForgottenError(subjectId);
    return entry.key;
  }

  async lookup(subjectIds: readonly string[]): Promise<ReadonlyMap<string, SubjectKey>> {
    this.assertOpen();
    const found = new Map<string, SubjectKey>();
    for (const id of subjectIds) {
      const entry = this.keys.get(id);
      if (entry === undefined) continue;
      found.set(id, entry.key === undefined ? { status: 'forgotten', forgottenAt: entry.forgottenAt! } : { status: 'active', key: entry.key });
    }
    return found;
  }

  async forget(subjectId: string): Promise<void> {
    this.assertOpen();
    assertValidSubjectId(subjectId);
    const entry = this.keys.get(subjectId);
    entry?.key?.fill(0);
    this.keys.set(subjectId, { key: undefined, forgottenAt: entry?.forgottenAt ?? new Date() });
  }

  async close(): Promise<void> {
    this.closed = true;
  }

  private assertOpen(): void {
    if (this.closed) throw new StoreClosedError('key store');
  }
}
