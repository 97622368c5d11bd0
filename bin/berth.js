#!/usr/bin/env node
// The `berth` command: runs the compiled CLI (npm run build writes dist/). CommonJS on purpose
// (bin/package.json): Node reads a CommonJS entry without libuv's thread pool, so the pool size that
// `berth serve` needs (src/engine/process.ts) can still be set here, before anything starts the pool;
// an ES module entry is read through the pool, which then keeps its default 4 threads.
if (process.argv[2] === "serve" && !process.env.UV_THREADPOOL_SIZE) process.env.UV_THREADPOOL_SIZE = "1";
import("../dist/cli/main.js").then((m) => m.main(process.argv));
