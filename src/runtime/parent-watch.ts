// Preloaded into every local replica (`node --import .../parent-watch.js bin/berth.js serve ...`):
// when the orchestrating `berth up` dies, even by SIGKILL, its replicas drain and exit.
//
// Why a pipe: the parent passes one end of a socket pair as fd BERTH_PARENT_FD and never writes
// to it. The kernel closes the parent's end when the parent process dies for any reason, so the
// replica reads end-of-file. That works on Linux and macOS, needs no polling of getppid() and no
// prctl(PR_SET_PDEATHSIG) (Linux-only, and tied to the forking thread), and needs nothing from
// the model server itself: this module runs before it.
import { Socket } from "node:net";

const GRACE_MS = 10_000;

const fd = Number(process.env.BERTH_PARENT_FD ?? "");
if (Number.isInteger(fd) && fd > 2) {
  // Not inherited further: a process this replica starts must not watch our parent.
  delete process.env.BERTH_PARENT_FD;
  let gone = false;
  const onParentGone = (): void => {
    if (gone) return;
    gone = true;
    // SIGTERM runs the server's own drain; if it does not finish, leave anyway.
    setTimeout(() => process.kill(process.pid, "SIGKILL"), GRACE_MS).unref();
    process.kill(process.pid, "SIGTERM");
  };
  try {
    const parent = new Socket({ fd, readable: true, writable: false });
    parent.on("end", onParentGone);
    parent.on("close", onParentGone);
    parent.on("error", onParentGone);
    parent.on("data", () => undefined);
    // The watch must not keep a replica alive that has finished its own work.
    parent.unref();
  } catch {
    // No such descriptor (started by hand with the variable set): nothing to watch.
  }
}
