import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';
import { freePorts, NATS_SERVER_BIN, NATS_URL, waitFor } from './nats-cluster.js';

async function jetStreamAnswers(url: string): Promise<boolean> {
  try {
    const nc = await connect({ servers: url, timeout: 3000, reconnect: false });
    try {
      await (await jetstreamManager(nc, { timeout: 3000 })).getAccountInfo();
      return true;
    } finally {
      await nc.close();
    }
  } catch {
    return false;
  }
}

/**
 * Runs once before the suite. NATS with JetStream is required (the NATS adapter's tests): when it
 * cannot be reached the run fails here, loudly, instead of skipping. Outside CI, with no NATS_URL
 * given and nothing on 127.0.0.1:4222, it starts a throwaway single node of the machine's
 * nats-server on a free port and points the workers at it through NATS_URL.
 */
export default async function setup(): Promise<(() => Promise<void>) | void> {
  const inCi = process.env['CI'] === 'true' || process.env['CI'] === '1';
  if (await jetStreamAnswers(NATS_URL)) return;
  if (!inCi && process.env['NATS_URL'] === undefined && existsSync(NATS_SERVER_BIN)) {
    const [port] = await freePorts(1);
    const dir = mkdtempSync(join(tmpdir(), 'eventfold-nats-single-'));
    const child = spawn(NATS_SERVER_BIN, ['-a', '127.0.0.1', '-p', String(port), '-js', '-sd', dir], { stdio: 'ignore' });
    const url = `nats://127.0.0.1:${port}`;
    await waitFor('a throwaway nats-server', () => jetStreamAnswers(url), 20_000);
    console.log(`No NATS on ${NATS_URL}: started a throwaway nats-server with JetStream on ${url} for the tests.`);
    process.env['NATS_URL'] = url;
    return async () => {
      child.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    };
  }
  throw new Error(
    `\n\nNATS with JetStream is required by the eventfold test suite and is NOT reachable at ${NATS_URL}.\n` +
      `Start it (on this machine: start-stop-daemon --start --oknodo --background --exec /usr/sbin/nats-server -- ` +
      `-a 127.0.0.1 -p 4222 -js -sd /var/lib/nats-server -l /var/log/nats-server.log; elsewhere e.g.\n` +
      `  docker run -d -p 4222:4222 nats:2.9 -js)\nor point NATS_URL at a server with JetStream. The tests are not skipped.\n`,
  );
}
