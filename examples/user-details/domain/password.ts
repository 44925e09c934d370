import { randomBytes, scrypt, timingSafeEqual, type ScryptOptions } from 'node:crypto';

/**
 * A password as it may appear in an event: the scrypt hash with its salt and cost parameters,
 * never the password itself. Parameters travel with the hash so they can be raised later without
 * breaking old events.
 */
export interface PasswordHash {
  readonly algorithm: 'scrypt';
  readonly salt: string; // base64
  readonly hash: string; // base64
  readonly N: number;
  readonly r: number;
  readonly p: number;
  readonly keyLength: number;
}

const DEFAULTS = { N: 16_384, r: 8, p: 1, keyLength: 32 } as const;

function derive(password: string, salt: Buffer, params: Omit<PasswordHash, 'algorithm' | 'salt' | 'hash'>): Promise<Buffer> {
  const options: ScryptOptions = { N: params.N, r: params.r, p: params.p, maxmem: 128 * params.N * params.r * 2 };
  return new Promise((resolve, reject) =>
    scrypt(password.normalize('NFC'), salt, params.keyLength, options, (error, key) =>
      error ? reject(error) : resolve(key),
    ),
  );
}

export async function hashPassword(password: string): Promise<PasswordHash> {
  const salt = randomBytes(16);
  const key = await derive(password, salt, DEFAULTS);
  return { algorithm: 'scrypt', salt: salt.toString('base64'), hash: key.toString('base64'), ...DEFAULTS };
}

export async function verifyPassword(password: string, stored: PasswordHash): Promise<boolean> {
  const expected = Buffer.from(stored.hash, 'base64');
  const key = await derive(password, Buffer.from(stored.salt, 'base64'), stored);
  return key.length === expected.length && timingSafeEqual(key, expected);
}
