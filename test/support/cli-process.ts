import { spawn, type ChildProcess } from 'node:child_process';
import { createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';

const require = createRequire(import.meta.url);
const root = fileURLToPath(new URL('../../', import.meta.url));
/** tsx's loader, by absolute URL, so the CLI runs from source in any working directory. */
export const tsxLoader = pathToFileURL(require.resolve('tsx')).href;
export const bin = fileURLToPath(new URL('../../src/cli/bin.ts', import.meta.url));

/** Absolute file URL of a source module, for generated config files. */
export function sourceUrl(path: string): string {
  return pathToFileURL(`${root}src/${path}`).href;
}

export interface CliResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

export interface CliRunOptions {
  readonly cwd?: string;
  readonly env?: Record<string, string | undefined>;
  readonly timeoutMs?: number;
}

function environment(extra: Record<string, string | undefined> | undefined): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  // Tests decide colour themselves; the parent's settings must not leak in.
  delete env['FORCE_COLOR'];
  delete env['NO_COLOR'];
  delete env['DATABASE_URL'];
  delete env['EVENTFOLD_PG_SCHEMA'];
  for (const [key, value] of Object.entries(extra ?? {})) {
    if (value === undefined) delete env[key];
    else env[key] = value;
  }
  return env;
}

/** Starts `eventfold <args>` as its own process. */
export function spawnCli(args: readonly string[], options: CliRunOptions = {}): ChildProcess {
  return spawn(process.execPath, ['--import', tsxLoader, bin, ...args], {
    cwd: options.cwd ?? root,
    env: environment(options.env),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

/** Runs `eventfold <args>` to completion and collects its output and exit code. */
export function runCli(args: readonly string[], options: CliRunOptions = {}): Promise<CliResult> {
  const child = spawnCli(args, options);
  return collect(child, options.timeoutMs ?? 60_000);
}

export function collect(child: ChildProcess, timeoutMs: number): Promise<CliResult> {
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`eventfold did not finish within ${timeoutMs}ms. stdout: ${stdout} stderr: ${stderr}`));
    }, timeoutMs);
    child.once('error', reject);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** A long-running `eventfold` (tail, inspect): read its output as it comes, wait for lines. */
export class LiveCli {
  stdout = '';
  stderr = '';
  readonly exited: Promise<CliResult>;

  constructor(readonly child: ChildProcess) {
    child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (this.stdout += chunk));
    child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (this.stderr += chunk));
    this.exited = new Promise((resolve) => {
      child.once('close', (code) => resolve({ code, stdout: this.stdout, stderr: this.stderr }));
    });
  }

  static start(args: readonly string[], options: CliRunOptions = {}): LiveCli {
    return new LiveCli(spawnCli(args, options));
  }

  /** Polls stdout until `predicate` holds; fails with the output so far after `timeoutMs`. */
  async waitFor(predicate: (stdout: string) => boolean, timeoutMs = 30_000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    while (!predicate(this.stdout)) {
      if (this.child.exitCode !== null) throw new Error(`eventfold exited (${this.child.exitCode}): ${this.stdout} ${this.stderr}`);
      if (Date.now() > deadline) throw new Error(`timed out waiting; stdout: ${this.stdout} stderr: ${this.stderr}`);
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    return this.stdout;
  }

  kill(): void {
    if (this.child.exitCode === null) this.child.kill('SIGKILL');
  }
}
