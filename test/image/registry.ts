// A real registry for the image tests: Debian's docker-registry (distribution 2.8) on 127.0.0.1 with
// a config of our own, optionally behind htpasswd (Basic) or token (Bearer) auth. For token auth this
// file also runs the token service, as auth.docker.io is for Docker Hub: it checks the user's password
// and signs a JWT with a throw-away certificate the registry trusts.
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { createPrivateKey, randomUUID, sign, X509Certificate } from "node:crypto";
import { mkdirSync, openSync, readFileSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { join } from "node:path";
import { freePort, waitFor } from "./podman.js";

export const REGISTRY_BINARY = "/usr/bin/docker-registry";
export const TEST_USER = "berth";
export const TEST_PASSWORD = "correct horse battery staple";

export type RegistryAuth = "none" | "htpasswd" | "token";

/** Why a registry of this kind cannot start here, or undefined. */
export function registryMissing(auth: RegistryAuth): string | undefined {
  if (spawnSync(REGISTRY_BINARY, ["--version"]).status !== 0)
    return "docker-registry is not installed (apt-get install docker-registry)";
  if (auth === "htpasswd" && spawnSync("htpasswd", ["-h"]).error)
    return "htpasswd is not installed (apt-get install apache2-utils)";
  if (auth === "token" && spawnSync("openssl", ["version"]).status !== 0) return "openssl is not installed";
  return undefined;
}

export class LocalRegistry {
  constructor(
    readonly host: string,
    private readonly process: ChildProcess,
    private readonly logPath: string,
    private readonly tokenServer?: Server,
  ) {}

  log(): string {
    return readFileSync(this.logPath, "utf8");
  }

  /** Requests in the access log whose method and path match, e.g. ("POST", /\/blobs\/uploads\/$/). */
  countRequests(method: string, path: RegExp): number {
    let count = 0;
    for (const match of this.log().matchAll(/"([A-Z]+) (\S+) HTTP\/1\.[01]" (\d{3})/g)) {
      const url = (match[2] as string).split("?")[0] as string;
      if (match[1] === method && path.test(url)) count++;
    }
    return count;
  }

  async stop(): Promise<void> {
    if (this.process.exitCode === null) {
      const exited = new Promise((resolve) => this.process.once("exit", resolve));
      this.process.kill("SIGTERM");
      await exited;
    }
    await new Promise<void>((resolve) =>
      this.tokenServer ? this.tokenServer.close(() => resolve()) : resolve(),
    );
  }
}

function base64url(data: Buffer | string): string {
  return Buffer.from(data).toString("base64url");
}

/** The token service: Basic credentials in, a JWT granting the requested repository actions out. */
async function startTokenServer(
  dir: string,
  service: string,
  issuer: string,
): Promise<{ server: Server; realm: string; certPath: string }> {
  const keyPath = join(dir, "token.key");
  const certPath = join(dir, "token.crt");
  const made = spawnSync(
    "openssl",
    [
      "req",
      "-x509",
      "-newkey",
      "rsa:2048",
      "-nodes",
      "-keyout",
      keyPath,
      "-out",
      certPath,
      "-days",
      "2",
      "-subj",
      "/CN=berth-test-token",
    ],
    { encoding: "utf8" },
  );
  if (made.status !== 0) throw new Error(`openssl failed: ${made.stderr}`);
  const key = createPrivateKey(readFileSync(keyPath));
  const certificate = new X509Certificate(readFileSync(certPath));
  const expected = `Basic ${Buffer.from(`${TEST_USER}:${TEST_PASSWORD}`).toString("base64")}`;
  const server = createServer((request, response) => {
    const url = new URL(request.url ?? "/", "http://localhost");
    if (request.headers.authorization !== expected) {
      response.writeHead(401, { "content-type": "application/json" });
      response.end('{"details":"incorrect username or password"}');
      return;
    }
    const access = url.searchParams.getAll("scope").flatMap((scope) => {
      const [type, name, actions] = scope.split(":");
      return type && name && actions ? [{ type, name, actions: actions.split(",") }] : [];
    });
    const now = Math.floor(Date.now() / 1000);
    const header = { typ: "JWT", alg: "RS256", x5c: [certificate.raw.toString("base64")] };
    const claims = {
      iss: issuer,
      sub: TEST_USER,
      aud: service,
      exp: now + 600,
      nbf: now - 10,
      iat: now,
      jti: randomUUID(),
      access,
    };
    const unsigned = `${base64url(JSON.stringify(header))}.${base64url(JSON.stringify(claims))}`;
    const token = `${unsigned}.${base64url(sign("sha256", Buffer.from(unsigned), key))}`;
    response.writeHead(200, { "content-type": "application/json" });
    response.end(JSON.stringify({ token, access_token: token, expires_in: 600 }));
  });
  const port = await freePort();
  await new Promise<void>((resolve) => server.listen(port, "127.0.0.1", resolve));
  return { server, realm: `http://127.0.0.1:${port}/token`, certPath };
}

export async function startRegistry(dir: string, auth: RegistryAuth = "none"): Promise<LocalRegistry> {
  mkdirSync(join(dir, "data"), { recursive: true });
  const port = await freePort();
  let authConfig = "";
  let tokenServer: Server | undefined;
  if (auth === "htpasswd") {
    const hashed = spawnSync("htpasswd", ["-Bbn", TEST_USER, TEST_PASSWORD], { encoding: "utf8" });
    if (hashed.status !== 0) throw new Error(`htpasswd failed: ${hashed.stderr}`);
    writeFileSync(join(dir, "htpasswd"), hashed.stdout);
    authConfig = `auth:\n  htpasswd:\n    realm: berth-test\n    path: ${join(dir, "htpasswd")}\n`;
  } else if (auth === "token") {
    const service = "berth-test-registry";
    const issuer = "berth-test-issuer";
    const started = await startTokenServer(dir, service, issuer);
    tokenServer = started.server;
    authConfig =
      `auth:\n  token:\n    realm: ${started.realm}\n    service: ${service}\n    issuer: ${issuer}\n` +
      `    rootcertbundle: ${started.certPath}\n`;
  }
  const config =
    "version: 0.1\nlog:\n  level: info\n  accesslog:\n    disabled: false\n" +
    `storage:\n  filesystem:\n    rootdirectory: ${join(dir, "data")}\n  delete:\n    enabled: true\n` +
    `http:\n  addr: 127.0.0.1:${port}\n${authConfig}`;
  writeFileSync(join(dir, "config.yml"), config);
  const logPath = join(dir, "registry.log");
  writeFileSync(logPath, "");
  const logFd = openSync(logPath, "a");
  const child = spawn(REGISTRY_BINARY, ["serve", join(dir, "config.yml")], {
    stdio: ["ignore", logFd, logFd],
  });
  const registry = new LocalRegistry(`127.0.0.1:${port}`, child, logPath, tokenServer);
  await waitFor(
    `docker-registry on 127.0.0.1:${port}`,
    async () => {
      if (child.exitCode !== null)
        throw new Error(`docker-registry exited ${child.exitCode}: ${registry.log().slice(-2000)}`);
      const response = await fetch(`http://127.0.0.1:${port}/v2/`);
      return response.status === 200 || response.status === 401 ? true : undefined;
    },
    30_000,
  );
  return registry;
}
