import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser } from 'playwright-core';

/** The Chromium of the machine (Debian's `chromium` package): playwright-core brings none. */
export function findChromium(): string {
  const dirs = (process.env.PATH ?? '').split(':').filter(Boolean);
  for (const name of ['chromium', 'chromium-browser']) {
    const found = dirs.map((dir) => join(dir, name)).find((path) => existsSync(path));
    if (found !== undefined) return found;
  }
  throw new Error('the browser tests need Chromium on PATH: apt-get install -y chromium');
}

/** Headless Chromium; as root it cannot use its own sandbox. */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: findChromium(),
    args: process.getuid?.() === 0 ? ['--no-sandbox'] : [],
  });
}
