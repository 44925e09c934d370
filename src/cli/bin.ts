import { runCli } from './main.js';

// The `eventfold` executable. Ctrl-C asks long-running commands (tail, inspect, rebuild) to stop
// cleanly; a second Ctrl-C exits at once.
let interrupt!: () => void;
const interrupted = new Promise<void>((resolve) => {
  interrupt = resolve;
});
let signals = 0;
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    signals++;
    if (signals > 1) process.exit(130);
    interrupt();
  });
}

// A reader that goes away (`eventfold read … | head`) is not an error: stop quietly.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw error;
  });
}

const code = await runCli(process.argv.slice(2), {
  stdout: process.stdout,
  stderr: process.stderr,
  env: process.env,
  cwd: process.cwd(),
  interrupted,
});
process.exitCode = code;
// Pending handles (a pg pool closing, timers) must not keep a finished command alive.
process.stdout.write('', () => process.exit(code));
