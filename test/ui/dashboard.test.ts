// Goal: the web dashboard (issue 6) works on the development cluster the README starts: it shows
// the three nodes and the leader; a switchover started from the page (with the keyboard) moves
// leadership; killing the leader from the page, the node that served the page, leaves the page
// working: it shows the new leader and a failover event with its measured duration; a node can
// be started again from the page. The dev control server behind the page's dev actions refuses
// bad input with catalogue errors, and only the cluster's own origins may use it.
// Method: `understudy dev` as a real process tree on loopback (test/ui/dev_process.ts), driven
// by Debian's chromium through playwright-core. Without /usr/bin/chromium the browser test is
// skipped with a message, unless UNDERSTUDY_REQUIRE_BROWSER=1 (CI), where it fails
// (UNDERSTUDY_CHROMIUM names another chromium binary). A screenshot
// is saved to artifacts/dashboard.png.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { DevProcess, http, waitFor } from './dev_process.ts';

const CHROMIUM = process.env['UNDERSTUDY_CHROMIUM'] || '/usr/bin/chromium';
const REQUIRE_BROWSER = process.env['UNDERSTUDY_REQUIRE_BROWSER'] === '1';
const HAVE_BROWSER = existsSync(CHROMIUM);
const SKIP_BROWSER = !HAVE_BROWSER && !REQUIRE_BROWSER
  ? `${CHROMIUM} not found: install it (apt-get install chromium) to run the browser test; UNDERSTUDY_REQUIRE_BROWSER=1 makes this a failure`
  : false;
const ARTIFACTS = fileURLToPath(new URL('../../artifacts/', import.meta.url));
const UI_WAIT_MS = 30_000;

describe('the dashboard on a real dev cluster', { timeout: 300_000 }, () => {
  let dev: DevProcess;

  before(async () => {
    dev = await DevProcess.start(3);
  });

  after(async () => {
    await dev?.stop();
  });

  it('the banner names the dashboard; every node serves it and advertises the control server', async () => {
    assert.match(dev.output.join(''), new RegExp(`Dashboard: http://127\\.0\\.0\\.1:${dev.basePort}/ui`));
    for (const id of ['n1', 'n2', 'n3']) {
      const page = await http('GET', `${dev.url(id)}/ui`);
      assert.equal(page.status, 200);
      const config = (await http('GET', `${dev.url(id)}/ui/config.json`)).body;
      assert.equal(config.node, id);
      assert.equal(config.devControl, dev.controlUrl);
      assert.deepEqual(config.members.map((m: { id: string }) => m.id), ['n1', 'n2', 'n3']);
      assert.deepEqual((await http('GET', `${dev.url(id)}/v1/dev/isolate`)).body, { node: id, isolated: false });
    }
  });

  it('the control server: kill, restart, isolate and heal a follower; bad input is a catalogue 4xx', async () => {
    const control = dev.controlUrl;
    const origin = dev.url('n1');
    const leader = await dev.waitForLeader(UI_WAIT_MS);
    const follower = ['n1', 'n2', 'n3'].find((id) => id !== leader) as string;
    const expectError = async (answer: Promise<{ status: number; body: any }>, status: number, code: string): Promise<void> => {
      const { status: got, body } = await answer;
      assert.equal(got, status, JSON.stringify(body));
      assert.equal(body.code, code);
      assert.equal(typeof body.message, 'string');
    };
    await expectError(http('POST', `${control}/dev/nodes/n9/kill`, {}), 404, 'UNKNOWN_NODE');
    await expectError(http('POST', `${control}/dev/nodes/${follower}/kill`), 400, 'BAD_REQUEST');
    await expectError(http('POST', `${control}/dev/nodes/${follower}/kill`, { now: true }), 400, 'BAD_REQUEST');
    await expectError(http('POST', `${control}/dev/nodes/${follower}/kill`, 'kill', { 'content-type': 'text/plain' }), 415, 'UNSUPPORTED_MEDIA_TYPE');
    await expectError(http('POST', `${control}/dev/nodes/${follower}/kill`, '{"', { 'content-type': 'application/json' }), 400, 'INVALID_JSON');
    await expectError(http('POST', `${control}/dev/nodes/${follower}/isolate`, { isolated: 'yes' }), 400, 'BAD_REQUEST');
    await expectError(http('GET', `${control}/dev/nodes?verbose=1`), 400, 'UNKNOWN_PARAMETER');
    await expectError(http('GET', `${control}/dev/reboot`), 404, 'ROUTE_NOT_FOUND');
    // Another web page cannot drive it: no preflight, and a simple POST is refused outright.
    await expectError(http('OPTIONS', `${control}/dev/nodes/${follower}/kill`, undefined, { origin: 'http://evil.example', 'access-control-request-method': 'POST' }), 403, 'ORIGIN_NOT_ALLOWED');
    await expectError(http('POST', `${control}/dev/nodes/${follower}/kill`, {}, { origin: 'http://evil.example' }), 403, 'ORIGIN_NOT_ALLOWED');
    const preflight = await http('OPTIONS', `${control}/dev/nodes/${follower}/kill`, undefined, { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type' });
    assert.equal(preflight.status, 204);
    assert.equal(preflight.headers['access-control-allow-origin'], origin);
    assert.equal((await dev.nodes()).filter((node) => node.running).length, 3, 'nothing was killed by bad requests');

    const isolated = await http('POST', `${control}/dev/nodes/${follower}/isolate`, { isolated: true }, { origin });
    assert.equal(isolated.status, 200, JSON.stringify(isolated.body));
    assert.equal(isolated.body.node.isolated, true);
    assert.deepEqual((await http('GET', `${dev.url(follower)}/v1/dev/isolate`)).body, { node: follower, isolated: true });
    await waitFor(`${follower} to lose its leader while isolated`, async () => (await http('GET', `${dev.url(follower)}/v1/cluster?local=true`)).body.leaderId === null, UI_WAIT_MS);
    assert.equal((await http('POST', `${control}/dev/nodes/${follower}/isolate`, { isolated: false })).body.node.isolated, false);
    await dev.waitForLeader(UI_WAIT_MS);

    const killed = await http('POST', `${control}/dev/nodes/${follower}/kill`, {});
    assert.equal(killed.status, 200);
    assert.deepEqual({ running: killed.body.node.running, pid: killed.body.node.pid }, { running: false, pid: null });
    await expectError(http('POST', `${control}/dev/nodes/${follower}/kill`, {}), 409, 'NODE_NOT_RUNNING');
    await expectError(http('POST', `${control}/dev/nodes/${follower}/isolate`, { isolated: true }), 409, 'NODE_NOT_RUNNING');
    const restarted = await http('POST', `${control}/dev/nodes/${follower}/restart`, {});
    assert.equal(restarted.status, 200);
    assert.equal(restarted.body.node.running, true);
    assert.equal(typeof restarted.body.node.pid, 'number');
    await dev.waitForLeader(UI_WAIT_MS);
    assert.equal((await dev.nodes()).filter((node) => node.running).length, 3);
  });

  it('in a browser: topology and leader, switchover from the page, kill the leader that served the page, failover event', { skip: SKIP_BROWSER }, async () => {
    assert.ok(HAVE_BROWSER, `${CHROMIUM} is missing and UNDERSTUDY_REQUIRE_BROWSER=1: install it with apt-get install chromium`);
    const { chromium } = await import('playwright-core');
    const browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
      timeout: 60_000,
    });
    const pageErrors: string[] = [];
    try {
      const page = await browser.newPage({ viewport: { width: 1280, height: 1500 } });
      page.setDefaultTimeout(UI_WAIT_MS);
      page.on('pageerror', (error) => pageErrors.push(error.message));

      // Open the page on a follower S, make S the leader from the page, then kill S from it.
      const initialLeader = await dev.waitForLeader(UI_WAIT_MS);
      const served = ['n1', 'n2', 'n3'].find((id) => id !== initialLeader) as string;
      await page.goto(`${dev.url(served)}/ui`, { timeout: UI_WAIT_MS });

      await page.waitForFunction(() => document.querySelectorAll('#topology tbody tr').length === 3);
      await page.waitForFunction((leader) => document.getElementById('leader')?.textContent === leader, initialLeader);
      const rows = await page.locator('#topology tbody tr').evaluateAll((trs) => trs.map((tr) => (tr as HTMLElement).dataset['node']));
      assert.deepEqual(rows, ['n1', 'n2', 'n3']);
      await page.waitForFunction(() => document.querySelectorAll('#topology tbody tr[data-health="healthy"]').length === 3);
      assert.equal(await page.locator(`#topology tr[data-node="${initialLeader}"]`).getAttribute('data-role'), 'leader');
      assert.match(await page.locator('#summary').textContent() ?? '', new RegExp(`Leader ${initialLeader}, term \\d+\\. 3 of 3 nodes reachable`));
      assert.equal(await page.locator('#summary').getAttribute('role'), 'status');
      // Dev actions are offered: the page found the control server.
      await page.getByRole('button', { name: `Kill ${served}` }).waitFor({ state: 'visible' });

      // Switchover, operated with the keyboard.
      const makeLeader = page.getByRole('button', { name: `Make ${served} leader` });
      await makeLeader.focus();
      await page.keyboard.press('Enter');
      await page.waitForFunction((to) => (document.getElementById('action-status')?.textContent ?? '').includes(`→ ${to}`), served);
      assert.match(await page.locator('#action-status').textContent() ?? '', new RegExp(`Leadership moved ${initialLeader} → ${served} in \\d+ ms`));
      await page.waitForFunction((leader) => document.getElementById('leader')?.textContent === leader, served);
      assert.equal(await dev.waitForLeader(UI_WAIT_MS), served);
      assert.equal(await page.evaluate(() => document.activeElement?.getAttribute('aria-label')), `Make ${served} leader`, 'focus stays on the control');

      // Some client traffic for the charts.
      for (let i = 0; i < 30; i++) {
        const put = await http('PUT', `${dev.url(served)}/v1/docs/ui/d${i}`, { i });
        assert.ok(put.status < 300, JSON.stringify(put.body));
        await http('GET', `${dev.url(initialLeader)}/v1/docs/ui/d${i}?consistency=stale`);
      }
      const termBefore = (await http('GET', `${dev.url(served)}/v1/cluster?local=true`)).body.term as number;

      // Kill the leader, which also served this page.
      await page.getByRole('button', { name: `Kill ${served}` }).click();
      await page.waitForFunction((id) => (document.getElementById('action-status')?.textContent ?? '').startsWith(`Killed ${id}`), served);
      const newLeader = await page.waitForFunction((old) => {
        const text = document.getElementById('leader')?.textContent ?? '';
        return /^n\d+$/.test(text) && text !== old ? text : null;
      }, served).then((handle) => handle.jsonValue() as Promise<string>);
      assert.notEqual(newLeader, served);
      assert.equal(await dev.waitForLeader(UI_WAIT_MS, served), newLeader);
      await page.waitForFunction((id) => ['stopped', 'unreachable'].includes((document.querySelector(`#topology tr[data-node="${id}"]`) as HTMLElement | null)?.dataset['health'] ?? ''), served);

      // The timeline: one line for the new leader, with the failover time its measured.
      const failover = await page.waitForFunction(({ leader, term }) => {
        const item = [...document.querySelectorAll('#events li[data-type="leader"]')].find((li) => {
          const el = li as HTMLElement;
          return el.dataset['leader'] === leader && Number(el.dataset['term']) > term && el.dataset['failoverMs'] !== undefined;
        }) as HTMLElement | undefined;
        return item === undefined ? null : { text: item.querySelector('.text')?.textContent ?? '', ms: Number(item.dataset['failoverMs']), term: Number(item.dataset['term']) };
      }, { leader: newLeader, term: termBefore }).then((handle) => handle.jsonValue() as Promise<{ text: string; ms: number; term: number }>);
      assert.match(failover.text, new RegExp(`^Leader ${newLeader} elected in term ${failover.term}, failover \\d+ ms \\(since last contact with ${served}\\)$`));
      assert.ok(failover.ms >= 100 && failover.ms < 20_000, `failover ${failover.ms} ms`);
      const sameTerm = await page.locator(`#events li[data-type="leader"][data-term="${failover.term}"]`).count();
      assert.equal(sameTerm, 1, 'the nodes\' reports of one election are merged into one line');
      // The charts drew the traffic.
      await page.waitForFunction(() => document.querySelectorAll('#chart-throughput path').length > 0);

      mkdirSync(ARTIFACTS, { recursive: true });
      await page.screenshot({ path: `${ARTIFACTS}dashboard.png`, fullPage: true });

      // Start the killed node again from the page.
      await page.getByRole('button', { name: `Start ${served}` }).click();
      await page.waitForFunction((id) => (document.querySelector(`#topology tr[data-node="${id}"]`) as HTMLElement | null)?.dataset['health'] === 'healthy', served);
      assert.deepEqual(pageErrors, [], 'no script errors on the page');
    } catch (error) {
      process.stderr.write(`--- dev cluster output\n${dev.logs()}\n`);
      throw error;
    } finally {
      await browser.close().catch(() => undefined);
    }
  });
});
