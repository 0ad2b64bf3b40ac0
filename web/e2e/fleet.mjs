// Drives the fleet pages the cloud hub serves (started by fleet_test.go): log
// in, see a site online with its channels, open it, see the fleet alarms; then
// drill into the demo site through the hub: its key figures, its own pages
// (polling), a setpoint, an alarm acknowledged, and a cloud viewer without control.
import { chromium } from 'playwright-core';
import { mkdtempSync, mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const env = (k) => {
  const v = process.env[k];
  if (!v) throw new Error(`${k} is not set (fleet_test.go sets it)`);
  return v;
};
const url = env('VOLTAGE_URL');
const artifacts = env('VOLTAGE_ARTIFACTS');
const password = env('VOLTAGE_ADMIN_PASSWORD');
const siteId = env('VOLTAGE_SITE_ID');
const viewer = { user: env('VOLTAGE_VIEWER'), password: env('VOLTAGE_VIEWER_PASSWORD') };
mkdirSync(artifacts, { recursive: true });
const step = (s) => console.log(`--- ${s}`);
const problems = [];

async function waitText(page, sel, pred, what, timeout = 30_000) {
  const deadline = Date.now() + timeout;
  let last = '';
  while (Date.now() < deadline) {
    last = (await page.locator(sel).first().textContent().catch(() => '')) ?? '';
    if (pred(last)) return last;
    await page.waitForTimeout(250);
  }
  throw new Error(`${what}: ${sel} is "${last}"`);
}

async function login(page, user, pw) {
  await page.goto(url + '/');
  await page.fill('#user', user);
  await page.fill('#password', pw);
  await page.click('button[type=submit]');
  await page.waitForSelector(`[data-testid=who]:has-text("${user}")`);
}

const dataDir = mkdtempSync(join(tmpdir(), 'voltage-chromium-'));
const ctx = await chromium.launchPersistentContext(dataDir, {
  executablePath: process.env.VOLTAGE_CHROMIUM || '/usr/bin/chromium',
  headless: true,
  viewport: { width: 1024, height: 768 },
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
try {
  const page = await ctx.newPage();
  page.setDefaultTimeout(20_000);
  page.on('console', (m) => {
    if (m.type() === 'error') {
      console.log(`[console] ${m.text()}`);
      if (/Content Security Policy|Refused to/i.test(m.text())) problems.push(m.text());
    }
  });
  page.on('pageerror', (e) => problems.push(`uncaught ${e.message}`));

  step('log in to the hub');
  await login(page, 'admin', password);

  step('the site sending heartbeats is listed online with its channels');
  const row = page.locator('[data-testid=site-north-1]');
  await row.waitFor();
  await page.waitForFunction(() => /online/.test(document.querySelector('[data-testid=site-north-1]')?.textContent ?? ''));
  const text = await row.textContent();
  if (!text.includes('North plant') || !text.includes('1/2')) throw new Error(`site row: ${text}`);
  await page.screenshot({ path: join(artifacts, '10-fleet-sites.png'), fullPage: true });

  step('drill into the site');
  await row.locator('a').first().click();
  await page.locator('text=i/o timeout').waitFor();
  await page.locator('text=The site has sent no values up yet.').waitFor();
  await page.screenshot({ path: join(artifacts, '11-fleet-site.png'), fullPage: true });

  step('fleet alarms');
  await page.click('nav a:has-text("Fleet alarms")');
  // The demo site's alarm (PV producing, raised at once); north-1 sends none.
  await waitText(page, '[data-testid=fleet-alarms]', (t) => t.includes(siteId) && !t.includes('north-1'), 'the demo site\'s alarm in the fleet', 60_000);
  await page.screenshot({ path: join(artifacts, '12-fleet-alarms.png'), fullPage: true });

  step('the cloud audit log shows the login');
  await page.click('nav a:has-text("Audit log")');
  await page.locator('[data-testid=fleet-audit] td:text-is("login")').first().waitFor();
  await page.screenshot({ path: join(artifacts, '13-fleet-audit.png'), fullPage: true });

  step('the demo site is listed with its key figures');
  await page.click('nav a:has-text("Sites")');
  const site = `[data-testid=site-${siteId}]`;
  await waitText(page, site, (t) => /online/.test(t) && /kW/.test(t) && /kWh/.test(t) && /%/.test(t), 'key figures in the site list', 60_000);
  await page.screenshot({ path: join(artifacts, '14-fleet-key-figures.png'), fullPage: true });

  step("open the site's own pages through the hub: the overview, polled");
  await page.click(`[data-testid=open-${siteId}]`);
  await waitText(page, '[data-testid=remote-role]', (t) => t.includes('cloud:admin') && t.includes('admin'), 'the role the site grants');
  const pv0 = await waitText(page, '[data-testid=pv-kw]', (t) => /\d/.test(t), 'PV power through the hub');
  await waitText(page, '[data-testid=pv-kw]', (t) => /\d/.test(t) && t !== pv0, `PV power changes from ${pv0} (polling)`);
  await page.screenshot({ path: join(artifacts, '15-remote-overview.png'), fullPage: true });

  step('channels through the hub: send a setpoint to the battery PCS');
  await page.goto(`${url}/#/sites/${siteId}/channels/2`);
  const setpoint = page.locator('[data-testid="point-2:A:1"]');
  await setpoint.waitFor();
  await setpoint.locator('[data-testid=send]').click();
  await page.fill('.modal input[name=value]', '-25');
  await page.click('[data-testid=confirm]');
  await waitText(page, '[data-testid="point-2:A:1"] [data-testid=cmd-result]', (t) => t.startsWith('ok'), 'command result through the hub');
  await waitText(page, '[data-testid="point-2:A:1"] [data-testid=value]', (t) => t.trim() === '-25', 'setpoint shown (polled)');
  await page.screenshot({ path: join(artifacts, '16-remote-command.png'), fullPage: true });

  step('alarms through the hub: acknowledge the active alarm');
  await page.goto(`${url}/#/sites/${siteId}/alarms`);
  const alarm = page.locator('[data-testid="alarm-pv_producing:h"]');
  await alarm.waitFor();
  await alarm.locator('[data-testid=ack]').click();
  await page.fill('.modal input[name=comment]', 'acknowledged from the cloud');
  await page.click('[data-testid=confirm]');
  await waitText(page, '[data-testid="alarm-pv_producing:h"] [data-testid=state]', (t) => t.includes('acknowledged') && !t.includes('unacknowledged'), 'alarm acknowledged');
  await page.screenshot({ path: join(artifacts, '17-remote-alarm-acked.png'), fullPage: true });

  step('a cloud viewer sees the site pages without any control');
  const vpage = await ctx.newPage(); // its own sessionStorage: its own login
  vpage.setDefaultTimeout(20_000);
  vpage.on('pageerror', (e) => problems.push(`viewer: uncaught ${e.message}`));
  await login(vpage, viewer.user, viewer.password);
  await vpage.goto(`${url}/#/sites/${siteId}/channels/2`);
  await waitText(vpage, '[data-testid=remote-role]', (t) => t.includes(`cloud:${viewer.user}`) && t.includes('viewer'), 'viewer role');
  await vpage.locator('[data-testid="point-2:A:1"]').waitFor();
  if ((await vpage.locator('[data-testid=send]').count()) !== 0) throw new Error('a cloud viewer sees command buttons');
  await vpage.goto(`${url}/#/sites/${siteId}/alarms`);
  await vpage.locator('[data-testid="alarm-pv_producing:h"]').waitFor();
  if ((await vpage.locator('[data-testid=ack], button:has-text("Shelve")').count()) !== 0) throw new Error('a cloud viewer sees alarm controls');
  await vpage.screenshot({ path: join(artifacts, '18-remote-viewer.png'), fullPage: true });

  if (problems.length) throw new Error('page problems:\n' + problems.join('\n'));
  console.log('fleet browser test passed');
} finally {
  await ctx.close();
  rmSync(dataDir, { recursive: true, force: true });
}
