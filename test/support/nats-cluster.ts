import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** The machine's server; override with NATS_SERVER_BIN. */
export const NATS_SERVER_BIN = process.env['NATS_SERVER_BIN'] ?? '/usr/sbin/nats-server';

/** The shared single server the tests and CI use (started by .ci/run when down). */
export const NATS_URL = process.env['NATS_URL'] ?? 'nats://127.0.0.1:4222';

export interface NatsNode {
  readonly name: string;
  readonly port: number;
  readonly clusterPort: number;
  readonly url: string;
  readonly storeDir: string;
  /** True while the process runs. */
  readonly running: boolean;
  /** SIGKILL: no clean shutdown, no leadership hand-off. */
  kill(): Promise<void>;
  /** Starts the node again on the same ports with the same store directory. */
  start(): Promise<void>;
}

export interface NatsCluster {
  readonly nodes: readonly NatsNode[];
  /** Client URLs of every node, for a client that fails over between them. */
  readonly servers: string[];
  node(name: string): NatsNode;
  stop(): Promise<void>;
}

export interface ClusterOptions {
  readonly size?: number;
  /** Largest message the servers accept (bytes); default the server's 1 MiB. */
  readonly maxPayload?: number;
}

/**
 * Starts a JetStream cluster of the machine's nats-server on loopback: free ports, a temporary
 * directory for configs and stores, removed by `stop()`. Resolves once every node answers on its
 * client port (the JetStream meta leader may take a few more seconds: callers wait for it).
 */
export async function startNatsCluster(options: ClusterOptions = {}): Promise<NatsCluster> {
  const size = options.size ?? 3;
  const root = mkdtempSync(join(tmpdir(), 'eventfold-nats-'));
  const ports = await freePorts(size * 2);
  const specs = Array.from({ length: size }, (_, i) => ({
    name: `n${i + 1}`,
    port: ports[i * 2]!,
    clusterPort: ports[i * 2 + 1]!,
  }));
  const nodes = specs.map((spec) => {
    const dir = join(root, spec.name);
    mkdirSync(dir, { recursive: true });
    const routes = specs
      .filter((other) => other !== spec)
      .map((other) => `nats-route://127.0.0.1:${other.clusterPort}`);
    const config = [
      `server_name: ${spec.name}`,
      `listen: 127.0.0.1:${spec.port}`,
      options.maxPayload === undefined ? '' : `max_payload: ${options.maxPayload}`,
      `jetstream { store_dir: "${join(dir, 'store')}", max_memory_store: 256MB, max_file_store: 2GB }`,
      size === 1 ? '' : `cluster { name: eventfold_test, listen: 127.0.0.1:${spec.clusterPort}, routes: [${routes.join(', ')}] }`,
    ].join('\n');
    const configFile = join(dir, 'nats.conf');
    writeFileSync(configFile, config);
    return new ManagedNode(spec.name, spec.port, spec.clusterPort, join(dir, 'store'), configFile, join(dir, 'nats.log'));
  });
  try {
    await Promise.all(nodes.map((node) => node.start()));
  } catch (error) {
    await Promise.all(nodes.map((node) => node.kill()));
    rmSync(root, { recursive: true, force: true });
    throw error;
  }
  return {
    nodes,
    servers: nodes.map((node) => node.url),
    node(name) {
      const found = nodes.find((node) => node.name === name);
      if (found === undefined) throw new Error(`no node named ${name}`);
      return found;
    },
    async stop() {
      await Promise.all(nodes.map((node) => node.kill()));
      rmSync(root, { recursive: true, force: true });
    },
  };
}

class ManagedNode implements NatsNode {
  private child: ChildProcess | undefined;

  constructor(
    readonly name: string,
    readonly port: number,
    readonly clusterPort: number,
    readonly storeDir: string,
    private readonly configFile: string,
    private readonly logFile: string,
  ) {}

  get url(): string {
    return `nats://127.0.0.1:${this.port}`;
  }

  get running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  async start(): Promise<void> {
    if (this.running) return;
    const child = spawn(NATS_SERVER_BIN, ['-c', this.configFile, '-l', this.logFile], { stdio: 'ignore' });
    this.child = child;
    const failed = new Promise<never>((_, reject) => {
      child.once('error', reject);
      child.once('exit', (code, signal) => reject(new Error(`nats-server ${this.name} exited (${code ?? signal})`)));
    });
    failed.catch(() => {});
    await Promise.race([waitForPort(this.port, 20_000), failed]);
  }

  async kill(): Promise<void> {
    const child = this.child;
    if (child === undefined || !this.running) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGKILL');
    await exited;
  }
}

async function waitForPort(port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await canConnect(port)) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`nothing answered on 127.0.0.1:${port} within ${timeoutMs} ms`);
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = new Socket();
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => {
      socket.destroy();
      resolve(false);
    });
    socket.connect(port, '127.0.0.1');
  });
}

/** Distinct free loopback ports (held open together so none is handed out twice). */
export async function freePorts(count: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from(
      { length: count },
      () =>
        new Promise<ReturnType<typeof createServer>>((resolve, reject) => {
          const server = createServer();
          server.once('error', reject);
          server.listen(0, '127.0.0.1', () => resolve(server));
        }),
    ),
  );
  const ports = servers.map((server) => {
    const address = server.address();
    if (typeof address !== 'object' || address === null) throw new Error('no port');
    return address.port;
  });
  await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))));
  return ports;
}

/** Polls `condition` until it returns true or the deadline passes (then throws with `what`). */
export async function waitFor(what: string, condition: () => Promise<boolean> | boolean, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  while (Date.now() < deadline) {
    try {
      if (await condition()) return;
    } catch (error) {
      lastError = error;
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${lastError === undefined ? '' : `: ${String(lastError)}`}`, {
    cause: lastError,
  });
}
