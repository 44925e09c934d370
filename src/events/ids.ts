import { randomFillSync } from 'node:crypto';

// Random bytes are drawn in blocks, as node's own randomUUID does, to avoid a syscall per id.
const POOL_BYTES = 16 * 4096;
let pool = Buffer.alloc(0);
let offset = POOL_BYTES;
const HEX = Array.from('0123456789abcdef', (c) => c.charCodeAt(0));
const DASH = 0x2d;

const hi = (byte: number): number => HEX[byte >> 4]!;
const lo = (byte: number): number => HEX[byte & 0x0f]!;

/**
 * A random (v4) UUID as one flat string. On V8, `crypto.randomUUID()` builds its result as a rope of
 * about twenty concatenated pieces (~490 bytes of heap); event ids and command ids are kept by the
 * hundred thousand in memory, where that dominated the heap and the GC. One `fromCharCode` call
 * makes the 36 characters as a flat string (~60 bytes), and faster.
 */
export function newId(): string {
  if (offset + 16 > pool.length) {
    pool = randomFillSync(Buffer.allocUnsafe(POOL_BYTES));
    offset = 0;
  }
  const b = pool;
  const o = offset;
  offset += 16;
  const b6 = (b[o + 6]! & 0x0f) | 0x40; // version 4
  const b8 = (b[o + 8]! & 0x3f) | 0x80; // variant 10xx
  const b0 = b[o]!, b1 = b[o + 1]!, b2 = b[o + 2]!, b3 = b[o + 3]!, b4 = b[o + 4]!, b5 = b[o + 5]!;
  const b7 = b[o + 7]!, b9 = b[o + 9]!, b10 = b[o + 10]!, b11 = b[o + 11]!;
  const b12 = b[o + 12]!, b13 = b[o + 13]!, b14 = b[o + 14]!, b15 = b[o + 15]!;
  return String.fromCharCode(
    hi(b0), lo(b0), hi(b1), lo(b1), hi(b2), lo(b2), hi(b3), lo(b3), DASH,
    hi(b4), lo(b4), hi(b5), lo(b5), DASH,
    hi(b6), lo(b6), hi(b7), lo(b7), DASH,
    hi(b8), lo(b8), hi(b9), lo(b9), DASH,
    hi(b10), lo(b10), hi(b11), lo(b11), hi(b12), lo(b12), hi(b13), lo(b13), hi(b14), lo(b14), hi(b15), lo(b15),
  );
}
