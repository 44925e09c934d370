// Takes the screenshots in docs/images (README, docs/cli.md): the event browser on a seeded SQLite
// store, and the CLI's coloured output rendered as a terminal. Needs Chromium (/usr/bin/chromium).
// Run: npm run docs:screenshots
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SqliteEventStore, SqliteProjectionRunner } from '../src/sqlite/index.js';
import { sqliteUserEmails } from '../test/fixtures/cli-app.js';
import { LiveCli, runCli, sourceUrl } from '../test/support/cli-process.js';
import { launchChromium } from '../test/support/chromium.js';

const images = fileURLToPath(new URL('../docs/images/', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'eventfold-screenshots-'));
const path = join(dir, 'shop.db');

async function seed(): Promise<void> {
  const store = new SqliteEventStore({ path });
  const people = [
    ['ada', 'Ada', 'ada@example.com'],
    ['grace', 'Grace', 'grace@example.com'],
    ['edsger', 'Edsger', 'edsger@example.com'],
    ['barbara', 'Barbara', 'barbara@example.com'],
    ['alan', 'Alan', 'alan@example.com'],
  ] as const;
  for (const [id, name, email] of people) {
    await store.append(`user-${id}`, [{ type: 'UserRegistered', data: { name, email }, metadata: { correlationId: `signup-${id}` } }], {
      expectedVersion: 'no-stream',
    });
  }
  for (let n = 1; n <= 6; n++) {
    await store.append(
      `order-${1000 + n}`,
      [
        { type: 'OrderPlaced', data: { customer: people[n % people.length]![0], lines: [{ sku: `book-${n}`, qty: n }], total: 12.5 * n } },
        { type: 'OrderPaid', data: { method: n % 2 === 0 ? 'card' : 'invoice', amount: 12.5 * n } },
      ],
      { expectedVersion: 'no-stream' },
    );
  }
  await store.append('user-ada', [{ type: 'EmailChanged', data: { email: 'ada@lovelace.org' }, metadata: { correlationId: 'req-17', causationId: 'cmd-3' } }], {
    expectedVersion: 1,
  });
  await store.append('user-ada', [{ type: 'UserRenamed', data: { name: 'Ada Lovelace' } }], { expectedVersion: 2 });
  const runner = new SqliteProjectionRunner(store, sqliteUserEmails);
  await runner.rebuild();
  await runner.stop();
  // A few events after the projection stopped, so the status shows lag.
  await store.append('user-grace', [{ type: 'EmailChanged', data: { email: 'grace@navy.mil' } }], { expectedVersion: 1 });
  await store.append('order-1001', [{ type: 'OrderShipped', data: { carrier: 'DHL', tracking: 'JD0146' } }], { expectedVersion: 2 });
  await store.close();
  writeFileSync(
    join(dir, 'eventfold.config.mjs'),
    `import { sqliteConfig } from ${JSON.stringify(sourceUrl('../test/fixtures/cli-app.ts'))};\nexport default sqliteConfig('shop.db');\n`,
  );
}

/** Minimal ANSI SGR → HTML for the terminal screenshot (our output only uses these codes). */
function ansiToHtml(text: string): string {
  const colours: Record<string, string> = { '31': '#ff7b72', '32': '#7ee787', '33': '#e3b341', '34': '#79c0ff', '36': '#56d4dd', '90': '#8b949e' };
  const escape = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
  let html = '';
  let open = 0;
  for (const part of text.split(/(\u001b\[\d+m)/)) {
    const code = /^\u001b\[(\d+)m$/.exec(part)?.[1];
    if (code === undefined) html += escape(part);
    else if (code === '39' || code === '22') {
      if (open > 0) {
        html += '</span>';
        open--;
      }
    } else {
      const style = code === '1' ? 'font-weight:bold' : code === '2' ? 'opacity:.6' : `color:${colours[code] ?? 'inherit'}`;
      html += `<span style="${style}">`;
      open++;
    }
  }
  return html + '</span>'.repeat(open);
}

async function main(): Promise<void> {
  await seed();
  const chromium = await launchChromium({ viewport: { width: 1360, height: 820 } });
  const inspect = LiveCli.start(['inspect', '--port', '0'], { cwd: dir });
  try {
    const out = await inspect.waitFor((s) => /Listening on http:\/\/127\.0\.0\.1:\d+\//.test(s), 60_000);
    const url = /Listening on (http:\/\/127\.0\.0\.1:\d+\/)/.exec(out)![1]!;
    const page = await chromium.context.newPage();
    await page.goto(url);
    await page.locator('[data-stream="user-ada"]').click();
    await page.getByTestId('event-row').nth(2).waitFor();
    await page.locator('[data-testid="event-row"][data-version="2"]').click();
    await page.getByTestId('tt-slider').fill('2');
    await page.getByTestId('tt-event').filter({ hasText: 'after v2' }).waitFor();
    await page.screenshot({ path: join(images, 'inspect-time-travel.png') });
    await page.getByTestId('tab-log').click();
    await page.getByTestId('log-row').nth(10).waitFor();
    await page.screenshot({ path: join(images, 'inspect-live-log.png') });
    await page.getByTestId('tab-projections').click();
    await page.getByTestId('projection-row').first().waitFor();
    await page.screenshot({ path: join(images, 'inspect-projections.png'), clip: { x: 0, y: 0, width: 1360, height: 220 } });

    const env = { FORCE_COLOR: '1' };
    const commands = [
      ['streams', '--db', 'shop.db'],
      ['read', 'user-ada', '--db', 'shop.db'],
      ['projections', 'status'],
    ];
    let terminal = '';
    for (const args of commands) {
      const result = await runCli(args, { cwd: dir, env });
      terminal += `<span style="color:#8b949e">$</span> eventfold ${args.join(' ')}\n${ansiToHtml(result.stdout)}\n`;
    }
    const term = await chromium.context.newPage();
    await term.setViewportSize({ width: 1100, height: 400 });
    await term.setContent(
      `<body style="margin:0;background:#0d1117"><pre id="t" style="margin:0;padding:18px 22px;color:#e6edf3;font:13px/1.45 ui-monospace,Menlo,monospace;display:inline-block">${terminal}</pre></body>`,
    );
    await term.locator('#t').screenshot({ path: join(images, 'cli.png') });
    console.log(`Screenshots written to ${images}`);
  } finally {
    inspect.child.kill('SIGINT');
    await inspect.exited;
    await chromium.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
