import type { BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SqliteEventStore } from '../src/sqlite/index.js';
import { launchChromium } from './support/chromium.js';
import { startInspect, XSS_EMAIL, XSS_NAME, XSS_NOTE, XSS_STREAM, XSS_TYPE, type InspectCase } from './support/inspect-fixture.js';
import { pgTestDatabase, type PgTestDatabase } from './support/postgres.js';

let chromium: Awaited<ReturnType<typeof launchChromium>>;
let db: PgTestDatabase;
beforeAll(async () => {
  chromium = await launchChromium();
  db = pgTestDatabase({ max: 4 });
});
afterAll(async () => {
  await chromium?.close();
  await db?.cleanup();
});

/** Opens the page and records script errors, CSP violations and any request leaving 127.0.0.1. */
async function openPage(context: BrowserContext, url: string): Promise<{ page: Page; problems: string[] }> {
  const page = await context.newPage();
  const problems: string[] = [];
  page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
  page.on('console', (message) => {
    if (message.type() === 'error') problems.push(`console: ${message.text()}`);
  });
  page.on('request', (request) => {
    if (!request.url().startsWith(url)) problems.push(`request outside the server: ${request.url()}`);
  });
  await page.goto(url);
  return { page, problems };
}

describe.each(['sqlite', 'postgres', 'nats'] as const)('eventfold inspect in headless Chromium (%s)', (kind) => {
  let c: InspectCase;
  let page: Page;
  let problems: string[];
  beforeAll(async () => {
    c = await startInspect(kind, db);
    ({ page, problems } = await openPage(chromium.context, c.url));
  });
  afterAll(async () => {
    await page?.close();
    await c?.close();
  });

  const streamItems = () => page.getByTestId('stream-item');

  it('lists streams and filters them by prefix', async () => {
    await expect.poll(() => streamItems().count(), { timeout: 30_000 }).toBe(4);
    await expect.poll(() => page.getByTestId('store').textContent()).toMatch({ sqlite: /^SQLite /, postgres: /^PostgreSQL postgres:\/\//, nats: /^NATS nats:\/\/.* \(stream EFT_/ }[kind]);
    await page.getByTestId('stream-search').fill('order');
    await expect.poll(async () => (await streamItems().allTextContents()).join('|'), { timeout: 30_000 }).toBe('order-1v1');
    await page.getByTestId('stream-search').fill('user-');
    await expect.poll(() => streamItems().count(), { timeout: 30_000 }).toBe(3);
  });

  it('shows a stream: event list, each event as JSON and its difference to the previous one', async () => {
    await page.locator('[data-stream="user-1"]').click();
    await expect.poll(() => page.getByTestId('stream-title').textContent(), { timeout: 30_000 }).toBe('user-1');
    await expect.poll(() => page.getByTestId('event-row').count(), { timeout: 30_000 }).toBe(3);
    const rows = await page.getByTestId('event-row').allInnerTexts();
    expect(rows[0]).toMatch(/^1\s+UserRegistered\s+\d+\s+/);
    expect(rows[1]).toMatch(/^2\s+EmailChanged\s+\d+\s+.*"correlationId":"req-17"/);
    expect(rows[2]).toMatch(/^3\s+UserRenamed/);
    expect(await page.getByTestId('stream-version').textContent()).toBe('v3');

    await page.locator('[data-testid="event-row"][data-version="2"]').click();
    await expect.poll(() => page.getByTestId('event-title').textContent()).toBe('v2 EmailChanged');
    const json = JSON.parse((await page.getByTestId('event-json').textContent())!) as Record<string, unknown>;
    expect(json).toMatchObject({ streamId: 'user-1', version: 2, type: 'EmailChanged', data: { email: 'ada@lovelace.org' } });
    expect(await page.getByTestId('event-changes').locator('li').allTextContents()).toEqual([
      '- name: "Ada"',
      '~ email: "ada@example.com" → "ada@lovelace.org"',
    ]);
  });

  it('time travels: the slider shows the aggregate state at each version and what the event changed', async () => {
    const slider = page.getByTestId('tt-slider');
    await expect.poll(() => page.getByTestId('time-travel').isVisible(), { timeout: 30_000 }).toBe(true);
    const stateAt = async (version: number) => {
      await slider.fill(String(version));
      await expect.poll(() => page.getByTestId('tt-version').textContent()).toBe(String(version));
      await expect
        .poll(async () => {
          const text = await page.getByTestId('tt-event').textContent();
          return version === 0 ? text === 'before the first event' : text?.startsWith(`after v${version} `);
        }, { timeout: 30_000 })
        .toBe(true);
      return JSON.parse((await page.getByTestId('tt-state').textContent())!) as Record<string, unknown>;
    };
    expect(await stateAt(3)).toEqual({ name: 'Ada Lovelace', email: 'ada@lovelace.org', renames: 1 });
    expect(await page.getByTestId('tt-changes').locator('li').allTextContents()).toEqual([
      '~ name: "Ada" → "Ada Lovelace"',
      '~ renames: 0 → 1',
    ]);
    expect(await stateAt(1)).toEqual({ name: 'Ada', email: 'ada@example.com', renames: 0 });
    expect(await stateAt(2)).toEqual({ name: 'Ada', email: 'ada@lovelace.org', renames: 0 });
    expect(await page.getByTestId('tt-changes').locator('li').allTextContents()).toEqual(['~ email: "ada@example.com" → "ada@lovelace.org"']);
    expect(await stateAt(0)).toEqual({ name: '', email: '', renames: 0 });
    // Keyboard works too: one step right from 0 is version 1.
    await slider.focus();
    await page.keyboard.press('ArrowRight');
    await expect.poll(() => page.getByTestId('tt-version').textContent()).toBe('1');
  });

  it('renders a script-injection payload in events and in a stream id as plain text', async () => {
    await page.getByTestId('stream-search').fill('user-<');
    await expect.poll(() => streamItems().count(), { timeout: 30_000 }).toBe(1);
    await streamItems().first().click();
    await expect.poll(() => page.getByTestId('stream-title').textContent(), { timeout: 30_000 }).toBe(XSS_STREAM);
    await expect.poll(() => page.getByTestId('event-row').count(), { timeout: 30_000 }).toBe(2);
    const eventJson = JSON.parse((await page.getByTestId('event-json').textContent())!) as { data: unknown; metadata: unknown };
    expect(eventJson.data).toEqual({ name: XSS_NAME, email: XSS_EMAIL });
    expect(eventJson.metadata).toEqual({ note: XSS_NOTE });
    await page.locator('[data-testid="event-row"][data-version="2"]').click();
    await expect.poll(() => page.getByTestId('event-title').textContent()).toBe(`v2 ${XSS_TYPE}`);
    // Time travel folds hostile data into state; it must show as text too.
    await expect.poll(async () => (await page.getByTestId('tt-state').textContent()) ?? '', { timeout: 30_000 }).toContain('window.__xss');
    await page.locator(`[data-testid="event-row"] >> text=${XSS_TYPE}`).hover();

    expect(await page.evaluate(() => (globalThis as unknown as { __xss?: unknown }).__xss)).toBeUndefined();
    // No element came from the payloads: the only scripts/images/svgs are none at all.
    expect(await page.locator('img, svg, b, script:not([src="/app.js"])').count()).toBe(0);
    expect(problems.filter((p) => !p.includes('404'))).toEqual([]);
  });

  it('follows the global log live', async () => {
    await page.getByTestId('tab-log').click();
    await expect.poll(() => page.getByTestId('log-row').count(), { timeout: 30_000 }).toBe(7);
    expect(await page.getByTestId('stream-list').isVisible()).toBe(false);
    await c.store.append('user-2', [{ type: 'EmailChanged', data: { email: 'grace@navy.mil' } }], { expectedVersion: 1 });
    await expect.poll(() => page.getByTestId('log-row').count(), { timeout: 30_000 }).toBe(8);
    expect(await page.getByTestId('log-row').first().innerText()).toMatch(/user-2\s+2\s+EmailChanged[\s\S]*grace@navy\.mil/);
    await expect.poll(() => page.getByTestId('head').textContent(), { timeout: 30_000 }).toBe(`head ${await c.store.headPosition()}`);
  });

  it('shows projection status and lag', async () => {
    await page.getByTestId('tab-projections').click();
    await expect.poll(() => page.getByTestId('projection-row').count(), { timeout: 30_000 }).toBe(1);
    expect(await page.getByTestId('log').isVisible()).toBe(false);
    const head = await c.store.headPosition();
    const cells = await page.getByTestId('projection-row').first().locator('td').allTextContents();
    expect(cells.slice(0, 4)).toEqual(['user-emails', 'never-ran', '0', String(head)]);
    expect(problems).toEqual([]);
  });

  // Only SQLite lets this test write a row the way an earlier version did.
  if (kind === 'sqlite') it('shows ids an earlier version stored with a bidi override or a zero-width space escaped, and opens them', async () => {
    const insert = (c.store as SqliteEventStore).database.prepare(
      `INSERT INTO eventfold_events (position, stream_id, version, type, data, metadata, event_id, recorded_at)
       VALUES ((SELECT max(position) + 1 FROM eventfold_events), ?, 1, 'Noted', '{"n":1}', NULL, ?, 0)`,
    );
    insert.run('legacy-\u202egnp.exe', '00000000-0000-4000-8000-0000000000c1');
    insert.run('legacy-a\u200bb', '00000000-0000-4000-8000-0000000000c2');
    await page.getByTestId('tab-streams').click();
    await page.getByTestId('stream-search').fill('legacy-');
    await expect
      .poll(async () => (await page.locator('[data-testid="stream-item"] .id').allTextContents()).sort().join('|'), { timeout: 30_000 })
      .toBe('legacy-\\u202egnp.exe|legacy-a\\u200bb');
    await page.locator('[data-testid="stream-item"]', { hasText: 'legacy-a' }).click();
    await expect.poll(() => page.getByTestId('stream-title').textContent(), { timeout: 30_000 }).toBe('legacy-a\\u200bb');
    await expect.poll(() => page.getByTestId('event-row').count(), { timeout: 30_000 }).toBe(1);
    expect(problems).toEqual([]);
  });

  it("shows a runner's stored fault (code, attempts) as text, and drops it once cleared", async () => {
    const hostile = `connection lost <img src=x onerror="window.__xss='runner error'"> \u001b[2J`;
    await c.saveRunnerError('user-emails', { message: hostile, code: 'ECONNRESET', at: new Date(), attempts: 7, state: 'failed' });
    await page.getByTestId('tab-projections').click();
    const row = page.getByTestId('projection-row').first();
    await expect.poll(async () => (await row.locator('td').allTextContents())[1], { timeout: 30_000 }).toBe('failed');
    const error = await page.getByTestId('projection-error').first().textContent();
    expect(error).toContain('[ECONNRESET] ');
    expect(error).toContain(`connection lost <img src=x onerror="window.__xss='runner error'"> \\u001b[2J`);
    expect(error).toMatch(/\(attempt 7, /);
    expect(await page.locator('img, svg').count()).toBe(0);
    expect(await page.evaluate(() => (globalThis as unknown as { __xss?: unknown }).__xss)).toBeUndefined();
    await c.saveRunnerError('user-emails', undefined);
    await expect.poll(() => page.getByTestId('projection-error').first().textContent(), { timeout: 30_000 }).toBe('-');
    expect(problems).toEqual([]);
  });
});
