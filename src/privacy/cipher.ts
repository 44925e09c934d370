import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import type { JsonValue } from '../events/types.js';
import { DecryptionFailedError } from './errors.js';

/** Marks an encrypted value in stored data: `{ "$pii": 1, "s": subject, "iv": …, "d": … }`. */
export const ENVELOPE_MARK = '$pii';

export interface Envelope {
  readonly [ENVELOPE_MARK]: 1;
  /** The data subject whose key encrypts the value (a pseudonymous id, not personal data itself). */
  readonly s: string;
  /** 12-byte IV, fresh for every value, base64. */
  readonly iv: string;
  /** Ciphertext followed by the 16-byte GCM tag, base64. */
  readonly d: string;
}

export function isEnvelope(value: unknown): value is Envelope {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const v = value as { [k: string]: unknown };
  return v[ENVELOPE_MARK] === 1 && typeof v['s'] === 'string' && typeof v['iv'] === 'string' && typeof v['d'] === 'string';
}

/**
 * AES-256-GCM of the value's JSON. The additional data binds the ciphertext to its subject and
 * path, so an envelope moved to another field or subject fails to decrypt.
 */
export function encryptValue(key: Buffer, subjectId: string, path: string, value: JsonValue): Envelope {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  cipher.setAAD(Buffer.from(`${subjectId}\u0000${path}`, 'utf8'));
  const encrypted = Buffer.concat([cipher.update(JSON.stringify(value), 'utf8'), cipher.final(), cipher.getAuthTag()]);
  return { [ENVELOPE_MARK]: 1, s: subjectId, iv: iv.toString('base64'), d: encrypted.toString('base64') };
}

export function decryptValue(key: Buffer, envelope: Envelope, path: string): JsonValue {
  try {
    const iv = Buffer.from(envelope.iv, 'base64');
    const data = Buffer.from(envelope.d, 'base64');
    if (iv.length !== 12 || data.length < 16) throw new Error('malformed envelope');
    const decipher = createDecipheriv('aes-256-gcm', key, iv);
    decipher.setAAD(Buffer.from(`${envelope.s}\u0000${path}`, 'utf8'));
    decipher.setAuthTag(data.subarray(data.length - 16));
    const plain = Buffer.concat([decipher.update(data.subarray(0, data.length - 16)), decipher.final()]);
    return JSON.parse(plain.toString('utf8')) as JsonValue;
  } catch {
    // The cause (a crypto error) is dropped on purpose: nothing about the key leaves this function.
    throw new DecryptionFailedError(envelope.s, path);
  }
}
