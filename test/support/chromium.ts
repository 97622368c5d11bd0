// Headless Chromium for the console tests: Debian's `chromium` driven by playwright-core (no
// downloaded browser), with the flags a container needs, and a watch for CSP violations.
import { existsSync } from "node:fs";
import { type Browser, chromium, type Page } from "playwright-core";

export const CHROMIUM = "/usr/bin/chromium";
export const hasChromium = existsSync(CHROMIUM);

const CHROMIUM_FLAGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

export function launchChromium(): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_FLAGS });
}

/** Collects the CSP violations Chromium reports on the page's console ("Refused to ..."). */
export function watchCspViolations(page: Page, into: string[] = []): string[] {
  page.on("console", (message) => {
    if (/Content Security Policy|Refused to/i.test(message.text())) into.push(message.text());
  });
  return into;
}
