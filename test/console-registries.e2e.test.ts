import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Registry } from '../src/services/store/types.js';
import { startConsole, type ConsoleUnderTest } from './support/console.js';
import { DEFAULT_USER, startRegistry, type RunningRegistry } from './support/registry.js';

/**
 * The console's registry pages in a real browser (Debian's chromium through playwright-core)
 * against the real service and a real docker-registry behind htpasswd: add, test the
 * connection, a refusal at its field, edit without the password, delete; the password
 * written but never read back.
 */

let served: ConsoleUnderTest;
let base: string;
let browser: Browser;
let registry: RunningRegistry;

beforeAll(async () => {
  [registry, served] = await Promise.all([startRegistry({ auth: 'htpasswd' }), startConsole('console-registries', 1)]);
  ({ base, browser } = served);
});

afterAll(async () => {
  await served?.close();
  await registry?.stop();
});

const fieldError = (page: Page, field: string) => page.locator(`.field[data-field="${field}"] .field-error`).textContent();
const named = async (name: string): Promise<Registry | undefined> =>
  ((await (await fetch(`${base}/api/v1/registries?limit=1000`)).json()) as { items: Registry[] }).items.find((r) => r.name === name);

/** Saves the form and waits for the page drawn again from the stored registry. */
async function save(page: Page): Promise<void> {
  await page.locator('.page-header .saved').evaluate((note) => (note.textContent = ''));
  await page.getByRole('button', { name: 'Save' }).click();
  await page.locator('.page-header .saved', { hasText: 'Saved.' }).waitFor();
}

/** Tests the connection and waits for the outcome the page shows. */
async function ping(page: Page): Promise<{ outcome: string | null; text: string | null }> {
  const message = page.locator('.page-header .message');
  await page.locator('button[data-action=ping]').click();
  await page.locator('.page-header .message[data-outcome]').waitFor({ timeout: 15_000 });
  return { outcome: await message.getAttribute('data-outcome'), text: await message.textContent() };
}

describe("the console's registries", () => {
  it('adds a registry, tests it, refuses a bad URL at its field, edits it without the password and deletes it, never showing the password', async () => {
    const { username, password } = DEFAULT_USER;
    const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
    const page = await context.newPage();
    const failures: string[] = [];
    page.on('pageerror', (error) => failures.push(String(error)));
    page.on('dialog', (dialog) => void dialog.accept());
    // Every API answer the page read, to look for the password in.
    const answers: Array<Promise<string>> = [];
    page.on('response', (response) => {
      if (response.url().includes('/api/v1/')) answers.push(response.text().catch(() => ''));
    });
    const input = (name: string) => page.locator(`[name="${name}"]`);

    await page.goto(`${base}/#/registries`);
    await page.getByRole('link', { name: 'New registry' }).click();
    await input('name').fill('guarded');
    await input('url').fill(`http://${registry.host}/v2`);
    await input('login').selectOption('credentials');
    await input('credentials.username').fill(username);
    await input('credentials.password').fill(password);
    await input('requestsPerSecond').fill('20');

    // A URL with a scheme and path is refused at its field; nothing is stored.
    await page.getByRole('button', { name: 'Create' }).click();
    await page.locator('.field[data-field="url"].invalid').waitFor();
    await expect(fieldError(page, 'url')).resolves.toMatch(/^body\.url .* is not a registry host/);
    await expect(fieldError(page, 'name')).resolves.toBe('');
    expect(await named('guarded')).toBeUndefined();

    await input('url').fill(registry.host);
    await page.getByRole('button', { name: 'Create' }).click();
    await until(() => /#\/registries\/[^/]+$/.test(page.url()) && !page.url().endsWith('/new'));
    // The hash moves before the registry's page replaces the form that was filled in.
    await page.locator('h1', { hasText: 'Registry guarded' }).waitFor();
    const created = (await named('guarded'))!;
    expect(page.url()).toBe(`${base}/#/registries/${created.id}`);
    expect(created).toMatchObject({ url: registry.host, hasCredentials: true, username, credentialHelper: null, requestsPerSecond: 20, insecure: false });
    await expect(input('credentials.password').inputValue()).resolves.toBe('');
    await expect(ping(page)).resolves.toEqual({ outcome: 'ok', text: `Connected to ${registry.host}.` });

    // A wrong password fails the test connection: the check above could fail.
    await input('credentials.password').fill('not-the-password');
    await save(page);
    await expect(ping(page)).resolves.toMatchObject({ outcome: 'failed' });

    // Back to the right one; then an edit that leaves the password empty keeps it.
    await input('credentials.password').fill(password);
    await save(page);
    await expect(ping(page)).resolves.toMatchObject({ outcome: 'ok' });
    await input('requestsPerSecond').fill('5');
    await input('name').fill('guarded-edited');
    await save(page);
    await expect(named('guarded-edited')).resolves.toMatchObject({ requestsPerSecond: 5, hasCredentials: true, username });
    await expect(page.locator('h1').textContent()).resolves.toBe('Registry guarded-edited');
    await expect(ping(page)).resolves.toMatchObject({ outcome: 'ok' });

    // A new username without a password is refused at the password's field.
    await input('credentials.username').fill('someone-else');
    await page.getByRole('button', { name: 'Save' }).click();
    await page.locator('.field[data-field="credentials.password"].invalid').waitFor();
    await expect(fieldError(page, 'credentials.password')).resolves.toMatch(/^body\.credentials\.password is required/);
    await expect(named('guarded-edited')).resolves.toMatchObject({ username });

    // The password was typed, sent, and never came back: not in the page, not in any answer.
    expect(await page.content()).not.toContain(password);
    const bodies = await Promise.all(answers);
    expect(bodies.length).toBeGreaterThan(8);
    expect(bodies.some((body) => body.includes(created.id))).toBe(true);
    for (const body of bodies) expect(body).not.toContain(password);

    // Listed with a link; deleted from its page.
    await page.goto(`${base}/#/registries`);
    await page.locator(`tr[data-registry="${created.id}"] a`, { hasText: 'guarded-edited' }).click();
    await page.locator('button[data-action=delete]').click();
    await until(() => page.url() === `${base}/#/registries`);
    await page.locator('section.registries tbody tr').first().waitFor();
    await expect(page.locator(`tr[data-registry="${created.id}"]`).count()).resolves.toBe(0);
    expect(await named('guarded-edited')).toBeUndefined();
    expect(failures).toEqual([]);
    await context.close();
  });
});

async function until(check: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
