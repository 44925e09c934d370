/**
 * Child of bench/publishing.ts: runs one subscription catch-up over an existing SQLite log and
 * prints `{ matched, ms, maxRssMb }` as JSON. A process of its own, so its peak RSS is its own.
 * Usage: node --import tsx bench/support/catch-up-child.ts <file> <type|-> <batchSize>
 */
import { InMemoryCheckpointStore, Subscription } from '../../src/index.js';
import { SqliteEventStore } from '../../src/sqlite/index.js';

const [file, type, batch] = process.argv.slice(2);
const store = new SqliteEventStore({ path: file! });
let matched = 0;
const started = performance.now();
const subscription = new Subscription({
  name: 'bench',
  store,
  checkpoints: new InMemoryCheckpointStore(),
  batchSize: Number(batch ?? '1000'),
  ...(type === '-' ? {} : { filter: { types: [type!] } }),
  handle: (events) => {
    matched += events.length;
  },
});
await subscription.start();
await subscription.waitUntilCaughtUp({ timeoutMs: 600_000 });
const ms = performance.now() - started;
await subscription.stop();
await store.close();
console.log(JSON.stringify({ matched, ms, maxRssMb: process.resourceUsage().maxRSS / 1024 }));
