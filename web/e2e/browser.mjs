// Drives the web UI in chromium against a live site (started by browser_test.go):
// log in, see a simulated value change, send a command and see its result,
// acknowledge an alarm, draw a trend, check a viewer sees no control and an
// expired session returns to the login page. Screenshots go to VOLTAGE_ARTIFACTS.
import { chromium } from 'playwright-core';
import { mkdtempSync, mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const env = (k) => {
  const v = process.env[k];
  if (!v) throw new Error(`${k} is not set (browser_test.go sets it)`);
  return v;
};
const url = env('VOLTAGE_URL');
const control = env('VOLTAGE_CONTROL_URL');
const artifacts = env('VOLTAGE_ARTIFACTS');
const admin = { user: 'admin', password: env('VOLTAGE_ADMIN_PASSWORD') };
const operator = { user: 'olga', password: env('VOLTAGE_OPERATOR_PASSWORD') };
const viewer = { user: 'victor', password: env('VOLTAGE_VIEWER_PASSWORD') };
const chromiumPath = process.env.VOLTAGE_CHROMIUM || '/usr/bin/chromium';
mkdirSync(artifacts, { recursive: true });

const step = (s) => console.log(`--- ${s}`);
const problems = [];

async function shot(page, name) {
  await page.screenshot({ path: join(artifacts, `${name}.png`), fullPage: true });
}

async function newPage(browser, name) {
  const page = await browser.newPage();
  page.setDefaultTimeout(20_000);
  page.on('console', (m) => {
    const t = m.text();
    if (m.type() === 'error') {
      console.log(`[${name} console] ${t}`);
      // A refused resource or a CSP violation is a defect of the page; a 401/403/409
      // the test provokes is not.
      if (/Content Security Policy|Refused to/i.test(t)) problems.push(`${name}: ${t}`);
    }
  });
  page.on('pageerror', (e) => problems.push(`${name}: uncaught ${e.message}`));
  return page;
}

async function login(page, who) {
  await page.goto(url + '/');
  await page.fill('#user', who.user);
  await page.fill('#password', who.password);
  await page.click('button[type=submit]');
  await page.waitForSelector(`[data-testid=who]:has-text("${who.user}")`);
}

async function waitText(page, sel, pred, what, timeout = 20_000) {
  const deadline = Date.now() + timeout;
  let last = '';
  while (Date.now() < deadline) {
    last = (await page.locator(sel).first().textContent().catch(() => '')) ?? '';
    if (pred(last)) return last;
    await page.waitForTimeout(200);
  }
  throw new Error(`${what}: ${sel} is "${last}"`);
}

const dataDir = mkdtempSync(join(tmpdir(), 'voltage-chromium-'));
// A fresh profile (the user data dir) per run. Each page has its own
// sessionStorage, so the admin, viewer and operator pages are separate logins.
const browser = await chromium.launchPersistentContext(dataDir, {
  executablePath: chromiumPath,
  headless: true,
  viewport: { width: 1024, height: 768 }, // a tablet, landscape
  args: [
    '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
  ],
});
try {
  const page = await newPage(browser, 'admin');

  step('log in as admin');
  await login(page, admin);
  const firstToken = await page.evaluate(() => JSON.parse(sessionStorage.getItem('voltage.session')).access);

  step('overview: the energy flow shows live values that change');
  await waitText(page, '[data-testid=conn]', (t) => t === 'live', 'WebSocket connection');
  const pv0 = await waitText(page, '[data-testid=pv-kw]', (t) => /\d/.test(t), 'PV power shown');
  await waitText(page, '[data-testid=pv-kw]', (t) => /\d/.test(t) && t !== pv0, `PV power changes from ${pv0}`);
  await waitText(page, '[data-testid=battery-sub]', (t) => /SOC \d/.test(t), 'battery SOC shown');
  await shot(page, '01-overview');

  step('channels: send a setpoint to the battery PCS and see the result');
  await page.goto(url + '/#/channels/2');
  const row = page.locator('[data-testid="point-2:A:1"]');
  await row.waitFor();
  await row.locator('[data-testid=send]').click();
  await page.fill('.modal input[name=value]', '-20');
  await shot(page, '02-command-confirm');
  await page.click('[data-testid=confirm]');
  await waitText(page, '[data-testid="point-2:A:1"] [data-testid=cmd-result]', (t) => t.startsWith('ok'), 'command result');
  await waitText(page, '[data-testid="point-2:A:1"] [data-testid=value]', (t) => t.trim() === '-20', 'setpoint shown live');
  await shot(page, '03-command-result');

  step('channels: restart the link of the battery channel');
  await page.click('button:has-text("Restart link")');
  await page.click('[data-testid=confirm]');
  await page.locator('.notice:has-text("Link restarted")').waitFor();
  await waitText(page, 'h2 .link-state', (t) => t === 'up', 'link up again');

  step('alarms: acknowledge the active alarm');
  await page.goto(url + '/#/alarms');
  const alarm = page.locator('[data-testid="alarm-pv_producing:h"]');
  await alarm.waitFor();
  await alarm.locator('[data-testid=ack]').click();
  await page.fill('.modal input[name=comment]', 'seen in the browser test');
  await page.click('[data-testid=confirm]');
  await waitText(page, '[data-testid="alarm-pv_producing:h"] [data-testid=state]', (t) => t.includes('acknowledged') && !t.includes('unacknowledged'), 'alarm acknowledged');
  await shot(page, '04-alarm-acked');

  step('trends: station PV power drawn from history and live values');
  await page.goto(url + '/#/trends');
  await page.locator('[data-testid="pick-station.pv_power"]').check();
  await page.locator('[data-testid=chart] canvas').waitFor();
  await waitText(page, '[data-testid=trend-points]', (t) => parseInt(t, 10) > 1, 'trend values');
  const inked = await page.evaluate(() => {
    const c = document.querySelector('[data-testid=chart] canvas');
    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    let n = 0;
    for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++;
    return n;
  });
  if (inked < 200) throw new Error(`the trend chart is blank (${inked} pixels drawn)`);
  await shot(page, '05-trend');

  step('the access token was refreshed before it expired (10 s life)');
  await page.waitForFunction((t) => JSON.parse(sessionStorage.getItem('voltage.session')).access !== t, firstToken, { timeout: 20_000 });

  step('instances: run an action of the PCS and see its outcome');
  await page.goto(url + '/#/instances/pcs1');
  const act = page.locator('[data-testid="action-active_power_setpoint"]');
  await act.waitFor();
  await act.locator('button:has-text("Run")').click();
  await page.fill('.modal input[name=value]', '10');
  await page.click('[data-testid=confirm]');
  await waitText(page, '[data-testid="action-active_power_setpoint"] .cmd-result', (t) => t.startsWith('ok'), 'action result');
  await shot(page, '06-instance-action');

  step('rules: enable a rule, dry-run it, read its log');
  await page.goto(url + '/#/rules');
  const rule = page.locator('[data-testid=rule-peak_shaving]');
  await rule.locator('button:has-text("Enable")').click();
  await rule.locator('button:has-text("Disable")').waitFor();
  await rule.locator('a').click();
  await page.click('[data-testid=dry-run]');
  await waitText(page, '[data-testid=dry-result] h3', (t) => /Dry run: \w+/.test(t), 'dry run result');
  await shot(page, '06-rule-dry-run');
  const wide = await page.evaluate(() => document.documentElement.scrollWidth);
  if (wide > 1024) throw new Error(`the rule page is ${wide} px wide at 1024 px`);

  step('users: create an engineer');
  await page.goto(url + '/#/users');
  await page.click('button:has-text("New user")');
  await page.fill('.modal input[name=name]', 'erin');
  await page.selectOption('.modal select[name=role]', 'engineer');
  await page.fill('.modal input[name=password]', 'erin-password-e2e');
  await page.click('[data-testid=confirm]');
  await page.locator('[data-testid=users] td:text-is("erin")').waitFor();

  step('instances, rules, users, audit pages render');
  for (const [hash, sel] of [
    ['#/instances/pcs1', '[data-testid=actions]'],
    ['#/rules', '[data-testid=rules]'],
    ['#/users', '[data-testid=users]'],
    ['#/audit', '[data-testid=audit]'],
  ]) {
    await page.goto(url + '/' + hash);
    await page.locator(sel).waitFor();
    await shot(page, '06-' + hash.replace(/[#/]+/g, '-').replace(/^-/, ''));
  }
  await waitText(page, '[data-testid=audit]', (t) => t.includes('alarm_acknowledged') || t.includes('command'), 'audit shows the test\'s actions', 5_000)
    .catch(() => undefined); // order depends on paging; the page rendering is the check

  step('a dead service shows an error with a retry, and the rest of the UI keeps working');
  const stop = await fetch(control + '/stop-rulesrv', { method: 'POST' });
  if (!stop.ok) throw new Error(`control /stop-rulesrv: ${stop.status}`);
  await page.goto(url + '/#/rules');
  await page.locator('.error[role=alert] button:has-text("Retry")').waitFor();
  await shot(page, '06-rules-service-down');
  await page.click('nav a:has-text("Overview")');
  await waitText(page, '[data-testid=pv-kw]', (t) => /\d/.test(t), 'overview after a dead service');

  step('a viewer sees no control, and the server refuses it anyway');
  const vpage = await newPage(browser, 'viewer');
  await login(vpage, viewer);
  await vpage.goto(url + '/#/channels/2');
  await vpage.locator('[data-testid="point-2:A:1"]').waitFor();
  if ((await vpage.locator('[data-testid=send]').count()) !== 0) throw new Error('viewer sees command buttons');
  await vpage.goto(url + '/#/alarms');
  await vpage.locator('[data-testid="alarm-pv_producing:h"]').waitFor();
  if ((await vpage.locator('[data-testid=ack], button:has-text("Shelve")').count()) !== 0) throw new Error('viewer sees alarm controls');
  if ((await vpage.locator('nav a:has-text("Users")').count()) !== 0) throw new Error('viewer sees the Users page');
  const refused = await vpage.evaluate(async () => {
    const t = JSON.parse(sessionStorage.getItem('voltage.session')).access;
    const r = await fetch('/commands', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${t}` },
      body: JSON.stringify({ channel: 2, type: 'A', point: 1, value: 5 }),
    });
    return r.status;
  });
  if (refused !== 403) throw new Error(`viewer's command answered ${refused}, want 403`);
  await shot(vpage, '07-viewer-alarms');

  step('tablet in portrait: the page fits the width, the menu folds away');
  await vpage.setViewportSize({ width: 768, height: 1024 });
  for (const hash of ['#/', '#/channels/2', '#/alarms']) {
    await vpage.goto(url + '/' + hash);
    await vpage.waitForTimeout(300);
    const wide = await vpage.evaluate(() => document.documentElement.scrollWidth);
    if (wide > 768) throw new Error(`${hash} is ${wide} px wide at 768 px`);
  }
  if (await vpage.locator('nav').isVisible()) throw new Error('the menu stays open at 768 px');
  await vpage.locator('[data-testid="alarm-pv_producing:h"]').waitFor();
  await shot(vpage, '07-viewer-portrait-alarms');
  await vpage.click('.menu-btn');
  await vpage.locator('nav a:has-text("Trends")').waitFor();
  await shot(vpage, '07-viewer-portrait-menu');

  step('an operator may acknowledge but not shelve');
  const opage = await newPage(browser, 'operator');
  await login(opage, operator);
  await opage.goto(url + '/#/alarms');
  await opage.locator('[data-testid="alarm-pv_producing:h"]').waitFor();
  if ((await opage.locator('button:has-text("Shelve")').count()) !== 0) throw new Error('operator sees Shelve');

  step('an expired session returns to the login page');
  const r = await fetch(control + '/expire', { method: 'POST' });
  if (!r.ok) throw new Error(`control /expire: ${r.status}`);
  await page.goto(url + '/#/channels');
  await page.locator('[data-testid=login-notice]').waitFor({ timeout: 30_000 });
  await waitText(page, '[data-testid=login-notice]', (t) => /expired/i.test(t), 'expiry notice');
  await shot(page, '08-expired');

  if (problems.length) throw new Error('page problems:\n' + problems.join('\n'));
  console.log('browser test passed');
} finally {
  await browser.close();
  rmSync(dataDir, { recursive: true, force: true });
}
