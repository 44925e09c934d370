/**
 * Starts the user-details HTTP API.
 *
 *   npm run example:serve                       # one process, both halves, inline read model
 *   npm run example:serve -- --role write       # commands only (POST, DELETE)
 *   npm run example:serve -- --role read        # queries only (GET), runs the async projection
 *
 * With DATABASE_URL set, a write process and a read process share one PostgreSQL database, as in
 * the CQRS split of the book chapter; the read process's projection tails the global log.
 */
import { parseArgs } from 'node:util';
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

const infrastructure = await openInfrastructure();
const app = await createUserDetailsApp(infrastructure, { projection });
const server = createUserDetailsServer({
  role,
  commands: app.commands,
  queries: app.queries,
  log: (line) => console.log(line),
});
server.listen(Number(values.port), values.host, () => {
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : values.port;
  console.log(`user-details ${role} service on http://${values.host}:${port} — events in ${infrastructure.description}, read model: ${projection}`);
});

let closing = false;
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    if (closing) return;
    closing = true;
    server.close();
    server.closeAllConnections();
    void app.close().then(() => process.exit(0));
  });
}
