// Drives the fleet pages the cloud hub serves (started by fleet_test.go): log
// in, see a site online with its channels, open it, see the fleet alarms.
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
mkdirSync(artifacts, { recursive: true });
const step = (s) => console.log(`--- ${s}`);
const problems = [];

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
  await page.goto(url + '/');
  await page.fill('#user', 'admin');
  await page.fill('#password', password);
  await page.click('button[type=submit]');
  await page.waitForSelector('[data-testid=who]:has-text("admin")');

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
  await page.locator('text=No active alarms.').waitFor();
  await page.screenshot({ path: join(artifacts, '12-fleet-alarms.png'), fullPage: true });

  step('the cloud audit log shows the login');
  await page.click('nav a:has-text("Audit log")');
  await page.locator('[data-testid=fleet-audit] td:text-is("login")').first().waitFor();
  await page.screenshot({ path: join(artifacts, '13-fleet-audit.png'), fullPage: true });

  if (problems.length) throw new Error('page problems:\n' + problems.join('\n'));
  console.log('fleet browser test passed');
} finally {
  await ctx.close();
  rmSync(dataDir, { recursive: true, force: true });
}
