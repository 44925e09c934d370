/**
 * Starts the user-details HTTP API.
 *
 *   npm run example:serve                       # one process, both halves, inline read model
 *   npm run example:serve -- --role write       # commands only (POST, DELETE)
 *   npm run example:serve -- --role read        # queries only (GET), runs the async projection
 *
 * With DATABASE_URL set, a write process and a read process share one PostgreSQL database, as in
 * the CQRS split of the book chapter; the read process's projection tails the global log.
 * SIGINT or SIGTERM stops it cleanly: no new connections, requests in flight are answered, then
 * the read side and the store are closed.
 */
import { parseArgs } from 'node:util';
import { consoleLogger } from 'eventfold';
import { createUserDetailsApp } from './app.js';
import { createUserDetailsServer, type Role } from './http/server.js';
import { openInfrastructure, type ProjectionMode } from './infrastructure.js';

const { values } = parseArgs({
  options: {
    role: { type: 'string', default: 'all' },
    port: { type: 'string', default: process.env['PORT'] ?? '3000' },
    host: { type: 'string', default: '127.0.0.1' },
    projection: { type: 'string' },
  },
});

const role = values.role as Role;
if (!['write', 'read', 'all'].includes(role)) throw new Error(`--role must be write, read or all, not ${values.role}`);
const projection = (values.projection ?? (role === 'write' ? 'none' : role === 'read' ? 'async' : 'inline')) as ProjectionMode;
if (!['inline', 'async', 'none'].includes(projection)) throw new Error('--projection must be inline, async or none');

/** Requests still running this long after a stop signal are cut off. */
const SHUTDOWN_GRACE_MS = 10_000;
/** A shutdown that has not finished by then (a store that cannot close) exits anyway, with code 1. */
const SHUTDOWN_DEADLINE_MS = 30_000;

const logger = consoleLogger;
const infrastructure = await openInfrastructure(process.env, { logger });
const app = await createUserDetailsApp(infrastructure, { projection });
const server = createUserDetailsServer({
  role,
  commands: app.commands,
  queries: app.queries,
  log: (line) => console.log(line),
  onError: (error, request) => console.error(`${request} failed:`, error),
});
server.on('error', (error) => {
  // Startup failures such as a port in use: say so and stop, with the store closed.
  console.error('user-details: the HTTP server failed:', error);
  void app.close().finally(() => process.exit(1));
});
server.listen(Number(values.port), values.host, () => {
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : values.port;
  console.log(`user-details ${role} service on http://${values.host}:${port} — events in ${infrastructure.description}, read model: ${projection}`);
});

let closing = false;
async function shutdown(signal: string): Promise<void> {
  console.log(`user-details: ${signal} received, stopping (no new requests; answering those in flight)`);
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  server.closeIdleConnections();
  const grace = setTimeout(() => server.closeAllConnections(), SHUTDOWN_GRACE_MS);
  await closed;
  clearTimeout(grace);
  console.log('user-details: HTTP server closed');
  await app.close();
  console.log(`user-details: store closed (${infrastructure.description}); stopped cleanly`);
}

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    if (closing) return;
    closing = true;
    setTimeout(() => {
      console.error(`user-details: shutdown did not finish within ${SHUTDOWN_DEADLINE_MS / 1000} s; exiting`);
      process.exit(1);
    }, SHUTDOWN_DEADLINE_MS).unref();
    shutdown(signal).then(
      () => process.exit(0),
      (error: unknown) => {
        console.error('user-details: shutdown failed:', error);
        process.exit(1);
      },
    );
  });
}
