// Serves the web console: the page at GET /, its scripts and styles under /console/, and uPlot's
// files from node_modules (no CDN), all read once at startup, all under a strict Content-Security-Policy
// (only this origin's files; no inline script or style, no eval). Found from this module in src/ and dist/.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import type { FastifyInstance, FastifyReply } from "fastify";

const ASSETS = fileURLToPath(new URL("../../src/dashboard/", import.meta.url));

/** The console's policy: this origin's files only; connect-src 'self' covers the API and streaming. */
export const CONSOLE_CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self'",
  "connect-src 'self'",
  "font-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join("; ");

const SECURITY_HEADERS = {
  "content-security-policy": CONSOLE_CSP,
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  "x-frame-options": "DENY",
  "cache-control": "no-cache",
};

const JS = "text/javascript; charset=utf-8";
const CSS = "text/css; charset=utf-8";

function uplotDir(): string {
  // The package's main entry is dist/uPlot.cjs.js; its ESM build and stylesheet sit beside it.
  return dirname(createRequire(import.meta.url).resolve("uplot"));
}

/** URL path → [file, content type]. Nothing outside this list is served. */
function assetTable(): Record<string, [string, string]> {
  const vendor = uplotDir();
  return {
    "/": [join(ASSETS, "index.html"), "text/html; charset=utf-8"],
    "/console/console.css": [join(ASSETS, "console.css"), CSS],
    "/console/main.js": [join(ASSETS, "main.js"), JS],
    "/console/api.js": [join(ASSETS, "api.js"), JS],
    "/console/dom.js": [join(ASSETS, "dom.js"), JS],
    "/console/models.js": [join(ASSETS, "models.js"), JS],
    "/console/charts.js": [join(ASSETS, "charts.js"), JS],
    "/console/events.js": [join(ASSETS, "events.js"), JS],
    "/console/logs.js": [join(ASSETS, "logs.js"), JS],
    "/console/playground.js": [join(ASSETS, "playground.js"), JS],
    "/console/vendor/uPlot.esm.js": [join(vendor, "uPlot.esm.js"), JS],
    "/console/vendor/uPlot.min.css": [join(vendor, "uPlot.min.css"), CSS],
  };
}

export function registerDashboard(app: FastifyInstance): void {
  for (const [path, [file, type]] of Object.entries(assetTable())) {
    const content = readFileSync(file);
    app.get(path, async (_request, reply: FastifyReply) =>
      reply.headers(SECURITY_HEADERS).type(type).send(content),
    );
  }
}
