// Serves the dashboard (src/dashboard/index.html and dashboard.js, read once at startup) at GET /.
// The files are plain static assets, found from this module both in src/ (tests) and dist/ (built).
import { readFileSync } from "node:fs";
import type { FastifyInstance } from "fastify";

const ASSETS = new URL("../../src/dashboard/", import.meta.url);

export function registerDashboard(app: FastifyInstance): void {
  const page = readFileSync(new URL("index.html", ASSETS));
  const script = readFileSync(new URL("dashboard.js", ASSETS));
  app.get("/", async (_request, reply) => reply.type("text/html; charset=utf-8").send(page));
  app.get("/dashboard.js", async (_request, reply) =>
    reply.type("text/javascript; charset=utf-8").send(script),
  );
}
