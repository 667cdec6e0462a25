import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApi } from '../src/services/api/app.js';
import type { FerryService } from '../src/services/service.js';
import type { Job, Policy, TagFilter } from '../src/services/store/types.js';
import { replicationFixture, type ReplicationFixture } from './support/fixture.js';
import { generateSigningKeys } from './support/referrers.js';
import { startConsole, type ConsoleUnderTest } from './support/console.js';
import { freePort } from './support/registry.js';

/**
 * The web console in a real browser (Debian's chromium through playwright-core) against the
 * real service: a job followed live through its phases, stopped mid-transfer, retried to the
 * end, then replayed from its history.
 */

const BIG = 3 * 1024 * 1024;
const THROTTLE = 400 * 1024; // bytes/s: the big blob takes ~7 s, time to look and press STOP
// Test artifacts by default; FERRY_UPDATE_SCREENSHOTS=1 refreshes the README's copies in docs/.
const SCREENSHOTS = join(import.meta.dirname, '..', process.env.FERRY_UPDATE_SCREENSHOTS ? 'docs' : 'test-artifacts');

let fixture: ReplicationFixture;
let served: ConsoleUnderTest;
let service: FerryService;
let base: string;
let browser: Browser;

beforeAll(async () => {
  [fixture, served] = await Promise.all([
    replicationFixture({ '1.0': { layers: [{ size: BIG, seed: 'console-big' }, { size: 20_000, seed: 'console-small' }] } }, 'console/app'),
    startConsole('console', 2),
  ]);
  ({ service, base, browser } = served);
});

afterAll(async () => {
  await served?.close();
  await fixture?.stop();
});

async function until<T>(what: string, check: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

const apiJob = async (id: string): Promise<Job> => (await fetch(`${base}/api/v1/jobs/${id}`)).json() as Promise<Job>;

/** Every change of the chart's current state, as the page saw it (wall clock, to compare with the server's). */
const RECORD_STATES = `
  window.__states = [];
  new MutationObserver((records) => {
    for (const r of records) {
      const state = r.target.getAttribute('data-current');
      if (state && state !== r.oldValue) window.__states.push({ state, at: Date.now() });
    }
  }).observe(document, { subtree: true, attributes: true, attributeOldValue: true, attributeFilter: ['data-current'] });
`;

/** Saves the policy form: drawn again from the answer, or showing what was refused at its field. */
async function save(page: Page): Promise<void> {
  await page.locator('form.policy-form').evaluate((form) => form.setAttribute('data-submitted', ''));
  await page.getByRole('button', { name: 'Save' }).click();
  await page.locator('form.policy-form:not([data-submitted]), form.policy-form .field.invalid').first().waitFor();
}

const fieldError = (page: Page, field: string) => page.locator(`.field[data-field="${field}"] .field-error`).textContent();

const current = (page: Page) => page.locator('svg.statechart[data-machine=replication]').getAttribute('data-current');
/** How many of the job's batches the batch chart shows in each state. */
const batchCounts = async (page: Page) => JSON.parse((await page.locator('svg.statechart[data-machine=batch]').getAttribute('data-counts')) ?? '{}') as Record<string, number>;
const pageStates = (page: Page) => page.evaluate('window.__states') as Promise<Array<{ state: string; at: number }>>;

describe('the web console', () => {
  it('follows a job live, stops it mid-transfer, retries it to the end and replays it', async () => {
    const source = await service.store.registries.create({ name: 'source', url: fixture.sourceProxy.host });
    const destination = await service.store.registries.create({ name: 'destination', url: fixture.destinationProxy.host });
    const policy = await service.store.policies.create({ name: 'console', sourceRegistryId: source.id, destinationRegistryId: destination.id });

    // Park the job in initialize (its tag list is held), and make blob downloads slow.
    const tagsHeld = fixture.sourceProxy.hold({ method: 'GET', path: /\/tags\/list/ });
    // And in check and pullManifest, each for as long as the test looks: on a busy machine a quick
    // phase could pass between two frames of the page, and the page would never show it.
    const accessHeld = fixture.destinationProxy.hold({ method: 'POST', path: /\/blobs\/uploads\// });
    const manifestHeld = fixture.sourceProxy.hold({ method: 'GET', path: /\/manifests\// });
    fixture.sourceProxy.addRule({ method: 'GET', path: /\/blobs\/sha256:/, fault: { type: 'throttle', bytesPerSecond: THROTTLE } });

    const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
    await context.addInitScript(RECORD_STATES);
    const page = await context.newPage();
    const failures: string[] = [];
    page.on('pageerror', (error) => failures.push(String(error)));

    // Home: the job shows up in the list by itself (job events), then its row follows it.
    await page.goto(`${base}/`);
    await page.locator('section.executions').waitFor();
    const { jobs } = await service.scheduler.trigger(policy, 'manual');
    const jobId = jobs[0]!.id;
    const row = page.locator(`tr[data-job="${jobId}"]`);
    await row.waitFor({ timeout: 10_000 });
    await until('the row shows running', async () => (await row.getAttribute('data-status')) === 'running');
    await expect(row.locator('td').nth(4).textContent()).resolves.toBe('initialize');
    // Which node holds it, and the nodes sharing the database with this one.
    const [host, pid] = service.node.split(':');
    await expect(row.locator('td').nth(7).textContent()).resolves.toBe(`${host}:${pid}`);
    const node = page.locator(`section.nodes tr[data-node="${service.node}"]`);
    await expect(node.locator('td').last().textContent()).resolves.toBe('this node');

    // Server-side transitions of the job, when they happened.
    const serverStates: Array<{ state: string; at: number }> = [];
    const unsubscribe = service.inspector.subscribe(jobId, (event) => {
      if (event.type === 'transition') serverStates.push({ state: event.to, at: Date.now() });
    });

    // The job page, opened mid-job: the chart shows initialize at once.
    await row.locator('a').first().click();
    await until('the chart in initialize', async () => (await page.locator('svg.statechart').count()) > 0 && (await current(page)) === 'replication.running.initialize');
    // A full load of the job page in a fresh tab: navigation start to the highlight.
    const fresh = await context.newPage();
    await fresh.goto(`${base}/#/jobs/${jobId}`);
    await until('the fresh page drawn', async () => (await fresh.locator('svg.statechart[data-current]').count()) > 0);
    const freshLoad = await fresh.evaluate(() => performance.getEntriesByName('ferry:chart')[0]?.startTime ?? null);
    await fresh.close();

    // Let the job go: the highlight walks through the phases to copying, where its one batch
    // walks the batch chart and parks in transferBlob.
    tagsHeld.release();
    await until('the chart in check', async () => (await current(page)) === 'replication.running.check');
    accessHeld.release();
    await until('the chart in copying', async () => (await current(page)) === 'replication.running.copying');
    await until('the batch in pullManifest', async () => (await batchCounts(page))['batch.running.pullManifest'] === 1);
    manifestHeld.release();
    await until('the batch in transferBlob', async () => JSON.stringify(await batchCounts(page)) === JSON.stringify({ 'batch.running.transferBlob': 1 }), 15_000);
    await until('a blob transfer with progress', async () => {
      const now = await page.locator('.blob [role=progressbar]').first().getAttribute('aria-valuenow').catch(() => null);
      return now !== null && Number(now) > 5;
    });
    // The transfer rate, sampled each second: the throttled blob moves at about THROTTLE bytes/s.
    const rates = async () => page.locator('svg.rate-chart circle.point').evaluateAll((points) => points.map((p) => Number(p.getAttribute('data-value'))));
    await until('three rate samples under way', async () => (await rates()).filter((rate) => rate > 0).length >= 3);
    expect(Math.max(...(await rates()))).toBeLessThan(THROTTLE * 3);
    const seen = (await pageStates(page)).map((s) => s.state);
    expect(seen).toEqual(expect.arrayContaining(['replication.running.initialize', 'replication.running.check', 'replication.running.copying']));
    expect(seen.indexOf('replication.running.check')).toBeLessThan(seen.indexOf('replication.running.copying'));
    const timelineRows = await page.locator('.timeline-table tbody tr').count();
    expect(timelineRows).toBeGreaterThanOrEqual(4);
    await expect(page.locator('.transition.taken').count()).resolves.toBeGreaterThanOrEqual(3);
    await expect(page.locator('button[data-action=stop]').isEnabled()).resolves.toBe(true);
    await expect(page.locator('button[data-action=retry]').isDisabled()).resolves.toBe(true);
    await mkdir(SCREENSHOTS, { recursive: true });
    await page.screenshot({ path: join(SCREENSHOTS, 'console-transfer.png'), fullPage: true });

    // STOP during the transfer: stopped in the chart and in the API.
    await page.locator('button[data-action=stop]').click();
    await until('the chart in stopped', async () => (await current(page)) === 'replication.stopped');
    expect((await apiJob(jobId)).status).toBe('stopped');
    await until('RETRY enabled', () => page.locator('button[data-action=retry]').isEnabled());
    await expect(page.locator('button[data-action=stop]').isDisabled()).resolves.toBe(true);

    // RETRY, at full speed: finished in the chart and in the API.
    fixture.clearFaults();
    await page.locator('button[data-action=retry]').click();
    await until('the chart in finished', async () => (await current(page)) === 'replication.finished', 20_000);
    expect((await apiJob(jobId)).status).toBe('finished');
    unsubscribe();

    // Update latency: each server-side transition to the page showing that state.
    const shown = await pageStates(page);
    const latencies = serverStates
      .map((server) => {
        const match = shown.find((s) => s.state === server.state && s.at >= server.at - 5);
        return match ? match.at - server.at : undefined;
      })
      .filter((ms): ms is number => ms !== undefined);
    expect(latencies.length).toBeGreaterThan(4);

    // Replay: the scrubber walks the stored history.
    const scrubber = page.locator('.scrubber');
    await scrubber.waitFor();
    await until('the timeline complete', async () => (await page.locator('.timeline-table tbody tr[data-to=finished]').count()) === 1);
    await page.screenshot({ path: join(SCREENSHOTS, 'console-finished.png'), fullPage: true });
    await scrubber.getByRole('button', { name: 'first transition' }).click();
    await expect(current(page)).resolves.toBe('replication.pending');
    await scrubber.getByRole('button', { name: 'next transition' }).click();
    await expect(current(page)).resolves.toBe('replication.running'); // claimed by a worker
    await scrubber.getByRole('button', { name: 'next transition' }).click();
    await expect(current(page)).resolves.toBe('replication.running.initialize');
    await expect(page.locator('.timeline-table tr.selected').getAttribute('data-index')).resolves.toBe('2');
    await expect(page.locator('.transition.step').count()).resolves.toBe(1); // START, drawn from pending
    const stoppedAt = await page.locator('.timeline-table tbody tr[data-to=stopped]').getAttribute('data-index');
    await page.evaluate(`(() => {
      const input = document.querySelector('.scrubber input[type=range]');
      input.value = '${Number(stoppedAt)}';
      input.dispatchEvent(new Event('input', { bubbles: true }));
    })()`);
    await expect(current(page)).resolves.toBe('replication.stopped');
    await scrubber.getByRole('button', { name: 'last transition' }).click();
    await expect(current(page)).resolves.toBe('replication.finished');

    expect(failures).toEqual([]);
    const median = [...latencies].sort((a, b) => a - b)[Math.floor(latencies.length / 2)];
    console.log(
      `console: job page load ${freshLoad?.toFixed(0)} ms (navigation start to the current state highlighted); ` +
        `update latency median ${median} ms, max ${Math.max(...latencies)} ms over ${latencies.length} transitions`,
    );
    await context.close();
  });

  // After the job above, which this node ran.
  it("lists the nodes, and shows a node's page with the jobs it held", async () => {
    const page = await browser.newPage();
    await page.goto(`${base}/#/nodes`);
    const row = page.locator(`section.nodes tr[data-node="${service.node}"]`);
    await expect(row.locator('td').last().textContent()).resolves.toBe('this node');
    await row.locator('a').click();
    await page.waitForURL(`**/#/nodes/${encodeURIComponent(service.node)}`);
    await expect(page.locator('h1 .mono').textContent()).resolves.toBe(service.node);
    await expect(page.locator('.execution-summary [data-status]').textContent()).resolves.toBe('live');
    await expect(page.locator('.execution-summary [data-held]').getAttribute('data-held')).resolves.toBe('0');
    const { items } = (await (await fetch(`${base}/api/v1/jobs?node=${encodeURIComponent(service.node)}`)).json()) as { items: Job[] };
    expect(items.length).toBeGreaterThan(0);
    await page.locator('section.jobs tbody tr[data-job]').first().waitFor();
    await expect(page.locator('section.jobs tbody tr[data-job]').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-job')))).resolves.toStrictEqual(items.map((job) => job.id));
    // A node that is gone: its page says so, and still lists what it held.
    await page.goto(`${base}/#/nodes/${encodeURIComponent('elsewhere:1:gone')}`);
    await expect(page.locator('.execution-summary [data-status]').textContent()).resolves.toBe('gone');
    await expect(page.locator('section.jobs td.empty').textContent()).resolves.toBe('No jobs.');
    await page.close();
  });

  it("shows a policy's settings and edits its referrers and signing key", async () => {
    const source = await service.store.registries.create({ name: 'policy-source', url: 'policy-source.example.com' });
    const destination = await service.store.registries.create({ name: 'policy-destination', url: 'policy-destination.example.com' });
    const tags: TagFilter = { include: ['*'], exclude: [], syntax: 'glob', semver: { range: '>=1.2 <2', includePrerelease: true }, latest: { count: 3, by: 'created' } };
    const { id } = await service.store.policies.create({ name: 'signed-mirror', sourceRegistryId: source.id, destinationRegistryId: destination.id, tags });
    const stored = async (): Promise<Policy> => (await fetch(`${base}/api/v1/policies/${id}`)).json() as Promise<Policy>;
    const key = generateSigningKeys().publicKey.export({ type: 'spki', format: 'pem' }).toString();
    const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
    const page = await context.newPage();
    const failures: string[] = [];
    page.on('pageerror', (error) => failures.push(String(error)));
    const setting = (term: string) => page.locator(`dd[data-setting="${term}"]`);

    await page.goto(`${base}/#/policies`);
    await page.locator(`tr[data-policy="${id}"] a`).click();
    await expect(setting('registries').textContent()).resolves.toBe('policy-source → policy-destination');
    await expect(setting('tags (glob)').textContent()).resolves.toBe('*; semver >=1.2 <2 with prereleases; the latest 3 by created');
    await expect(setting('referrers').textContent()).resolves.toBe('all');
    await expect(setting('signature').textContent()).resolves.toBe('not required');
    // The form holds the stored settings.
    await expect(page.locator('input[name="tags.semver.range"]').inputValue()).resolves.toBe('>=1.2 <2');
    await expect(page.locator('select[name="tags.latest.by"]').inputValue()).resolves.toBe('created');

    // A key that is none is refused at its field, and nothing is stored.
    await page.locator('select[name=referrers]').selectOption('types');
    await page.locator('input[name=referrer-types]').fill('application/spdx+json, application/vnd.in-toto+json');
    await page.locator('textarea[name=signing-key]').fill('not a key');
    await save(page);
    await expect(fieldError(page, 'requireSignature')).resolves.toMatch(/^body\.requireSignature the key of policy signed-mirror is not a PEM public key/);
    expect(await stored()).toMatchObject({ referrers: 'all', requireSignature: null });

    await page.locator('textarea[name=signing-key]').fill(key);
    await save(page);
    await expect(setting('referrers').textContent()).resolves.toBe('application/spdx+json, application/vnd.in-toto+json');
    await expect(setting('signature').textContent()).resolves.toBe('required, with the key of policy signed-mirror');
    expect(await stored()).toMatchObject({ referrers: ['application/spdx+json', 'application/vnd.in-toto+json'], requireSignature: { key } });

    // A key left as it was keeps where it came from.
    await service.store.policies.update(id, { requireSignature: { key, source: '/etc/ferry/cosign.pub' } });
    await page.reload();
    await page.locator('select[name=referrers]').selectOption('all');
    await save(page);
    expect(await stored()).toMatchObject({ referrers: 'all', requireSignature: { key, source: '/etc/ferry/cosign.pub' } });

    await page.locator('select[name=referrers]').selectOption('none');
    await page.locator('textarea[name=signing-key]').fill('');
    await save(page);
    await expect(setting('signature').textContent()).resolves.toBe('not required');
    expect(await stored()).toMatchObject({ referrers: 'none', requireSignature: null });
    expect(failures).toEqual([]);
    await context.close();
  });

  it('creates a policy through the form with every field, previews it against the registries, disables, enables and triggers it', async () => {
    const small = (seed: string) => ({ layers: [{ size: 30_000, seed }] });
    const registries = await replicationFixture({ '1.0.0': small('one'), '1.1.0': small('one-one'), '2.0.0': small('two') }, 'preview/app');
    try {
      const source = await service.store.registries.create({ name: 'preview-source', url: registries.source.host });
      const destination = await service.store.registries.create({ name: 'preview-destination', url: registries.destination.host });
      const context = await browser.newContext({ viewport: { width: 1400, height: 1200 } });
      const page = await context.newPage();
      const failures: string[] = [];
      page.on('pageerror', (error) => failures.push(String(error)));
      const input = (name: string) => page.locator(`[name="${name}"]`);
      const named = async () => ((await (await fetch(`${base}/api/v1/policies`)).json()) as { items: Policy[] }).items.find((p) => p.name === 'mirror');

      await page.goto(`${base}/#/policies`);
      await page.getByRole('link', { name: 'New policy' }).click();
      await input('name').fill('mirror');
      await input('sourceRegistryId').selectOption(source.id);
      await input('destinationRegistryId').selectOption(destination.id);
      await input('repositories.include').fill('preview/**');
      await input('tags.include').fill('1.*');
      await input('tags.latest.count').fill('5');
      await input('rewrite.namespace').fill('mirrored');
      await input('override').uncheck();
      await input('platforms').fill('linux/amd64');
      await input('replicateDeletions').check();
      await input('bandwidthKiBps').fill('4096');
      await input('priority').fill('7');

      // The preview follows the form: the tags the filters select, all missing at the destination.
      const row = page.locator(`.preview tr[data-repository="${registries.source.host}/preview/app"]`);
      await row.waitFor({ timeout: 20_000 });
      await until('the preview of 1.*', async () => (await row.locator('.tag').allTextContents()).sort().join() === '1.0.0,1.1.0');
      await expect(row.locator('.tag.to-copy').count()).resolves.toBe(2);
      await expect(row.textContent()).resolves.toContain(`${registries.destination.host}/mirrored/preview/app`);
      expect(Number(await row.locator('[data-bytes]').getAttribute('data-bytes'))).toBeGreaterThan(60_000);
      await expect(page.locator('.preview-summary').textContent()).resolves.toMatch(/to copy from the 1 previewed of 1 selected repositories\. A preview covers the first 10 repositories in at most 20\.0 s, and writes nothing\./);
      expect((await fetch(`http://${registries.destination.host}/v2/mirrored/preview/app/tags/list`)).status).toBe(404);

      await mkdir(SCREENSHOTS, { recursive: true });
      await page.screenshot({ path: join(SCREENSHOTS, 'console-policy.png'), fullPage: true });

      // A schedule the API refuses is shown at its field, and nothing is stored.
      await input('trigger.type').selectOption('cron');
      await input('trigger.schedule').fill('* * *');
      await page.getByRole('button', { name: 'Create' }).click();
      await until('the schedule refused', async () => ((await fieldError(page, 'trigger.schedule')) ?? '').length > 0);
      await expect(fieldError(page, 'trigger.schedule')).resolves.toMatch(/^body\.trigger\.schedule "\* \* \*" is not a cron schedule/);
      await expect(fieldError(page, 'name')).resolves.toBe('');
      expect(await named()).toBeUndefined();

      await input('trigger.schedule').fill('0 3 * * *');
      await page.getByRole('button', { name: 'Create' }).click();
      await page.locator('dd[data-setting="registries"]').waitFor();
      const created = (await named())!;
      expect(page.url()).toBe(`${base}/#/policies/${created.id}`);
      expect(created).toMatchObject({
        enabled: true,
        sourceRegistryId: source.id,
        destinationRegistryId: destination.id,
        repositories: { include: ['preview/**'], exclude: [] },
        tags: { include: ['1.*'], exclude: [], syntax: 'glob', latest: { count: 5, by: 'semver' } },
        rewrite: { namespace: 'mirrored', flatten: 0 },
        override: false,
        platforms: ['linux/amd64'],
        replicateDeletions: true,
        bandwidthKiBps: 4096,
        trigger: { type: 'cron', schedule: '0 3 * * *' },
        priority: 7,
        referrers: 'all',
        requireSignature: null,
      });
      expect(created.tags.semver).toBeUndefined();

      // Edited: back to manual runs, the preview run again from the stored settings.
      await row.waitFor({ timeout: 20_000 });
      await input('trigger.type').selectOption('manual');
      await input('platforms').fill('');
      await save(page);
      await expect(named()).resolves.toMatchObject({ trigger: { type: 'manual' }, platforms: [] });

      // Disable, then enable: trigger now only for an enabled policy.
      await page.locator('button[data-action=disable]').click();
      await page.locator('button[data-action=enable]').waitFor();
      await expect(named()).resolves.toMatchObject({ enabled: false });
      await expect(page.locator('button[data-action=trigger]').isDisabled()).resolves.toBe(true);
      await page.locator('button[data-action=enable]').click();
      await page.locator('button[data-action=disable]').waitFor();
      await expect(named()).resolves.toMatchObject({ enabled: true });

      // Trigger now: the execution's page, its policy by name, its jobs charted by status as they finish.
      await page.locator('button[data-action=trigger]').click();
      await until('the execution page', () => /#\/executions\/[^/]+$/.test(page.url()));
      const executionId = decodeURIComponent(page.url().split('/').at(-1)!);
      const execution = (await (await fetch(`${base}/api/v1/executions/${executionId}`)).json()) as { policyId: string };
      expect(execution.policyId).toBe(created.id);
      await expect(page.locator('.execution-summary [data-policy]').textContent()).resolves.toBe('policy mirror');
      await expect(page.locator('.crumbs').textContent()).resolves.toBe('Executions / execution of mirror');
      await page.locator('.execution-summary [data-status=finished]').waitFor({ timeout: 20_000 });
      const chart = page.locator('svg.status-chart');
      await until('the chart with the finished job', async () => (await page.locator('svg.status-chart polygon[data-status=finished]').count()) === 1);
      expect(Number(await chart.getAttribute('data-points'))).toBeGreaterThanOrEqual(3);
      await expect(chart.locator('polygon[data-status=finished]').getAttribute('data-max')).resolves.toBe('1');
      expect((await chart.locator('polygon[data-status=finished]').boundingBox())?.width).toBeGreaterThan(10);
      await expect(chart.locator('polygon[data-status=pending]').count()).resolves.toBe(1);
      await page.screenshot({ path: join(SCREENSHOTS, 'console-execution.png'), fullPage: true });
      const copied = (await (await fetch(`http://${registries.destination.host}/v2/mirrored/preview/app/tags/list`)).json()) as { tags: string[] };
      expect(copied.tags.sort()).toEqual(['1.0.0', '1.1.0']);

      // Names, not ids: the job page and the executions list.
      await page.locator('tr[data-job] a').first().click();
      await expect(page.locator('[data-origin=policy]').textContent()).resolves.toBe('policy mirror');
      await expect(page.locator('[data-origin=source]').textContent()).resolves.toBe('from preview-source');
      await expect(page.locator('[data-origin=destination]').textContent()).resolves.toBe('to preview-destination');
      await expect(page.locator('.crumbs a').nth(1).textContent()).resolves.toBe('execution of mirror');
      await page.goto(`${base}/#/`);
      await expect(page.locator(`tr[data-execution="${executionId}"] td[data-policy]`).textContent()).resolves.toBe('mirror');
      expect(failures).toEqual([]);
      await context.close();
    } finally {
      await registries.stop();
    }
  });

  it("lists the registries with each one's budget: ceiling, rate, pulls left, pause and requests waiting", async () => {
    const registry = await service.settings.addRegistry({ name: 'rationed', url: 'rationed.example.com', requestsPerSecond: 4 });
    // What a registry like Docker Hub would have taught the service: a budget, then a 429.
    const limiter = service.registries.limiter(registry.url)!;
    (await limiter.admit(true, undefined, 'GET manifest')).answered(200, { 'ratelimit-limit': '100;w=21600', 'ratelimit-remaining': '76;w=21600' });
    (await limiter.admit(false, undefined, 'HEAD manifest')).answered(429, { 'retry-after': '600' });
    const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
    const page = await context.newPage();
    const failures: string[] = [];
    page.on('pageerror', (error) => failures.push(String(error)));
    const cell = (name: string) => page.locator(`tr[data-registry="${registry.id}"] td[data-budget="${name}"]`).textContent();

    await page.goto(`${base}/`);
    await page.getByRole('link', { name: 'Registries' }).click();
    await page.locator(`tr[data-registry="${registry.id}"]`).waitFor();
    await expect(cell('ceiling')).resolves.toBe('4/s');
    await expect(cell('rate')).resolves.toMatch(/^\d+(\.\d)?\/s$/);
    await expect(cell('pulls')).resolves.toMatch(/^76 of 100 per 6 h 00 m, whole again at \d\d:\d\d:\d\d\.\d{3}$/);
    await expect(cell('paused')).resolves.toMatch(/^\d\d:\d\d:\d\d\.\d{3}$/);
    await expect(cell('waiting')).resolves.toBe('0');
    expect(failures).toEqual([]);
    await context.close();
  });

  it('asks for the token when the API wants one, keeps it and sends it on every call, streams included', async () => {
    const secured = await buildApi(service, { token: 'console-secret' });
    const port = await freePort();
    await secured.listen({ port, host: '127.0.0.1' });
    const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
    try {
      const page = await context.newPage();
      await page.goto(`http://127.0.0.1:${port}/`);
      const dialog = page.locator('#token-dialog');
      await dialog.waitFor({ state: 'visible' });
      await page.locator('#token-input').fill('console-secret');
      await page.getByRole('button', { name: 'Save' }).click();
      await page.locator('tr[data-execution]').first().waitFor();
      await expect(page.evaluate("localStorage.getItem('ferry.token')")).resolves.toBe('console-secret');

      // A finished job opened directly: replayed from its history, its live stream open (with the token).
      const { items } = await service.store.jobs.list({ status: 'finished' });
      await page.goto(`http://127.0.0.1:${port}/#/jobs/${items[0]!.id}`);
      await until('the chart in finished', async () => (await current(page)) === 'replication.finished');
      await page.locator('.scrubber').waitFor();
      await until('the stream open', async () => (await page.locator('.connection-open').count()) === 1);
      await expect(dialog.isVisible()).resolves.toBe(false);

      // Its execution's page lists it.
      await page.locator('.crumbs a', { hasText: 'execution' }).click();
      await page.locator(`tr[data-job="${items[0]!.id}"][data-status=finished]`).waitFor();
    } finally {
      await context.close();
      await secured.close();
    }
  });
});
