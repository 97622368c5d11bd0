// `berth down`: asks the running `berth up` to drain and stop every replica and exit, and waits
// until its process is gone.
import type { Command } from "commander";
import { adminCall } from "../control/admin-client.js";
import { downResponseSchema } from "../control/admin-protocol.js";
import { withAdmin } from "./admin.js";
import { CliError, EXIT_FAILURE } from "./errors.js";

export function register(program: Command): void {
  program
    .command("down")
    .description("stop the running berth up: drain and stop every replica")
    .option("--timeout <seconds>", "how long to wait for it to exit", "150")
    .action(async (options: { timeout: string }) => {
      const { pid } = await withAdmin((socket) => adminCall(socket, downResponseSchema, "POST", "/v1/down"));
      const deadline = Date.now() + Number(options.timeout) * 1000;
      while (isAlive(pid)) {
        if (Date.now() > deadline) throw new CliError(`berth up (pid ${pid}) is still running`, EXIT_FAILURE);
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
      process.stdout.write(`berth up (pid ${pid}) stopped\n`);
    });
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}
