import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/** A child process running a TypeScript fixture, with its stdout lines collected. */
export interface Child {
  readonly process: ChildProcess;
  readonly lines: string[];
  /** Resolves when a line equal to `line` was printed (rejects on exit or after `ms`). */
  waitForLine(line: string, ms?: number): Promise<void>;
  exited: Promise<number | null>;
}

export function spawnFixture(fixture: string, args: readonly string[]): Child {
  const script = fileURLToPath(new URL(`../fixtures/${fixture}`, import.meta.url));
  const child = spawn(process.execPath, ['--import', 'tsx', script, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: string[] = [];
  let buffered = '';
  let stderr = '';
  const listeners = new Set<() => void>();
  child.stdout!.on('data', (chunk: Buffer) => {
    buffered += chunk.toString();
    const parts = buffered.split('\n');
    buffered = parts.pop()!;
    lines.push(...parts);
    for (const l of listeners) l();
  });
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return {
    process: child,
    lines,
    exited,
    waitForLine(line, ms = 60_000) {
      return new Promise((resolve, reject) => {
        const check = (): void => {
          if (lines.includes(line)) done(resolve);
        };
        const timer = setTimeout(() => done(() => reject(new Error(`no '${line}' within ${ms} ms; stderr: ${stderr.slice(-2000)}`))), ms);
        const done = (then: () => void): void => {
          clearTimeout(timer);
          listeners.delete(check);
          then();
        };
        listeners.add(check);
        void exited.then((code) => done(() => (lines.includes(line) ? resolve() : reject(new Error(`exited (${code}) before '${line}'; stderr: ${stderr.slice(-2000)}`)))));
        check();
      });
    },
  };
}

export async function until(condition: () => boolean | Promise<boolean>, ms = 60_000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`${what} not met within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 25));
  }
}
