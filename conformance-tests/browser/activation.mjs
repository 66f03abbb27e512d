// A partner opens an activation link in a real browser (Debian's chromium driven by
// playwright-core): reads the landing page, clicks the download button, saves the profile, and
// opens the link again. Prints one JSON line with what it saw; exits non-zero on any failure.
//
//   node activation.mjs LINK OUT_DIR
import { chromium } from 'playwright-core';
import { join } from 'node:path';

const [link, outDir] = process.argv.slice(2);
if (!link || !outDir) {
  console.error('usage: node activation.mjs LINK OUT_DIR');
  process.exit(2);
}
const executablePath = process.env.CHROMIUM || '/usr/bin/chromium';
// Playwright gives the browser a new, empty profile of its own.
const browser = await chromium.launch({
  executablePath,
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
const seen = {};
try {
  const context = await browser.newContext({ acceptDownloads: true, viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  const first = await page.goto(link);
  seen.status = first.status();
  seen.heading = await page.textContent('h1');
  seen.text = await page.textContent('main');
  seen.csp = first.headers()['content-security-policy'] || '';
  await page.screenshot({ path: join(outDir, 'activation-landing.png'), fullPage: true });
  const [download] = await Promise.all([
    page.waitForEvent('download'),
    page.getByRole('button', { name: 'Download the profile file' }).click(),
  ]);
  seen.filename = download.suggestedFilename();
  seen.profile = join(outDir, seen.filename);
  await download.saveAs(seen.profile);
  const again = await page.goto(link);
  seen.againStatus = again.status();
  seen.againHeading = await page.textContent('h1');
  await page.screenshot({ path: join(outDir, 'activation-used.png'), fullPage: true });
  await context.close();
} finally {
  await browser.close();
}
console.log(JSON.stringify(seen));
