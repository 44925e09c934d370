import { randomFillSync } from 'node:crypto';

// Random bytes are drawn in blocks, as node's own randomUUID does, to avoid a syscall per id.
const POOL_BYTES = 16 * 256;
let pool = Buffer.alloc(0);
let offset = POOL_BYTES;
const HEX = Buffer.from('0123456789abcdef', 'latin1');
const text = Buffer.alloc(36);

/**
 * A random (v4) UUID as one flat string. On V8, `crypto.randomUUID()` builds its result as a rope of
 * about twenty concatenated pieces (~490 bytes of heap); event ids and command ids are kept by the
 * hundred thousand in memory, where that dominated the heap and the GC. This writes the 36
 * characters into a buffer and decodes them once (~60 bytes).
 */
export function newId(): string {
  if (offset + 16 > pool.length) {
    pool = randomFillSync(Buffer.allocUnsafe(POOL_BYTES));
    offset = 0;
  }
  const bytes = pool;
  const o = offset;
  offset += 16;
  bytes[o + 6] = (bytes[o + 6]! & 0x0f) | 0x40; // version 4
  bytes[o + 8] = (bytes[o + 8]! & 0x3f) | 0x80; // variant 10xx
  let j = 0;
  for (let i = 0; i < 16; i++) {
    if (i === 4 || i === 6 || i === 8 || i === 10) text[j++] = 0x2d; // '-'
    const byte = bytes[o + i]!;
    text[j++] = HEX[byte >> 4]!;
    text[j++] = HEX[byte & 0x0f]!;
  }
  return text.toString('latin1', 0, 36);
}
