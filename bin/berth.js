#!/usr/bin/env node
// The `berth` command: runs the compiled CLI (npm run build writes dist/).
import("../dist/cli/main.js").then((m) => m.main(process.argv));
