import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';

/** Whether any file under `dir` holds `text` (a server's store: blocks, indexes, everything). */
export function storeHolds(dir: string, text: string): boolean {
  const needle = Buffer.from(text, 'utf8');
  const walk = (path: string): boolean => {
    if (statSync(path).isDirectory()) return readdirSync(path).some((name) => walk(join(path, name)));
    return readFileSync(path).includes(needle);
  };
  return walk(dir);
}
