// Placeholder replaced at merge by the NATS store's subjects.ts (same encoding): `=XX` for every
// byte that is not A-Z, a-z, 0-9, '_' or '-'.
export function encodeToken(text: string): string {
  let out = '';
  for (const byte of Buffer.from(text, 'utf8')) {
    const plain = (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5a) || (byte >= 0x61 && byte <= 0x7a) || byte === 0x5f || byte === 0x2d;
    out += plain ? String.fromCharCode(byte) : `=${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}
