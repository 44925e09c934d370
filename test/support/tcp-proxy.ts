import net from 'node:net';

/**
 * A TCP proxy on a loopback port in front of a server, for fault tests: `cut()` destroys every
 * open connection (a real dropped connection for the client on both sides) and refuses new ones
 * until `restore()`; `blackhole()` keeps every connection open but forwards nothing in either
 * direction (packets lost, no reset) until `restore()`; `killOn()` drops the connections whose
 * client sends a given string. Other users of the server are not touched.
 */
export interface TcpProxy {
  readonly port: number;
  /** Connections accepted so far. */
  readonly accepted: number;
  /** Connections dropped by `killOn` so far. */
  readonly killed: number;
  cut(): void;
  /**
   * Stops forwarding without closing anything: data sent either way is discarded, and new
   * connections are accepted but never reach the server. `restore()` forwards again (on new
   * connections; one that lost data stays broken, as after a real outage).
   */
  blackhole(): void;
  /**
   * A network partition: like `blackhole()`, and a client closing its connection is not seen by
   * the server either (its goodbye is lost), so the server's side stays open until the server
   * gives up on it, `restore()` or `close()`.
   */
  partition(): void;
  /** The next `times` client writes containing `text` drop their connection instead of reaching the server. */
  killOn(text: string, times: number): void;
  restore(): void;
  close(): Promise<void>;
}

export async function startTcpProxy(target: { readonly host: string; readonly port: number }): Promise<TcpProxy> {
  const sockets = new Set<net.Socket>();
  let refusing = false;
  let blackholed = false;
  let partitioned = false;
  let accepted = 0;
  let killed = 0;
  let kill: { text: string; left: number } | undefined;
  const server = net.createServer((client) => {
    if (refusing) {
      client.destroy();
      return;
    }
    accepted++;
    sockets.add(client);
    let upstream: net.Socket | undefined;
    const drop = (): void => {
      client.destroy();
      sockets.delete(client);
      // The server's side stays open (and in `sockets`, for restore/close) while partitioned.
      if (partitioned && upstream !== undefined && !upstream.destroyed) return;
      upstream?.destroy();
      if (upstream !== undefined) sockets.delete(upstream);
    };
    client.on('error', drop);
    client.on('close', drop);
    client.on('data', (chunk: Buffer) => {
      if (blackholed) return;
      if (kill !== undefined && kill.left > 0 && chunk.includes(kill.text)) {
        kill.left--;
        killed++;
        drop();
        return;
      }
      upstream?.write(chunk);
    });
    // A connection accepted while blackholed never reaches the server (its SYN was lost).
    if (blackholed) return;
    const up = net.connect(target.port, target.host);
    upstream = up;
    sockets.add(up);
    up.on('error', drop);
    up.on('close', drop);
    up.on('data', (chunk: Buffer) => {
      if (!blackholed) client.write(chunk);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    get accepted() {
      return accepted;
    },
    get killed() {
      return killed;
    },
    cut() {
      refusing = true;
      for (const socket of sockets) socket.destroy();
      sockets.clear();
    },
    blackhole() {
      blackholed = true;
    },
    partition() {
      blackholed = true;
      partitioned = true;
    },
    killOn(text, times) {
      kill = { text, left: times };
    },
    restore() {
      refusing = false;
      blackholed = false;
      partitioned = false;
    },
    close() {
      refusing = true;
      for (const socket of sockets) socket.destroy();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** The host and port of a postgres:// URL. */
export function hostAndPort(url: string): { host: string; port: number } {
  const parsed = new URL(url);
  return { host: parsed.hostname || '127.0.0.1', port: Number(parsed.port || 5432) };
}

/** The same URL, pointed at another port on 127.0.0.1. */
export function viaPort(url: string, port: number): string {
  const parsed = new URL(url);
  parsed.hostname = '127.0.0.1';
  parsed.port = String(port);
  return parsed.toString();
}
