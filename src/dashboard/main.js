// The console's entry: polls /api/status (1 s), /api/history, /api/events and the chosen replica's
// log (2 s), and wires the key prompt and the playground. An error shows in the header, polling goes on.
import { ApiError, getJson, onKeyChange, setUpKeyForm } from "./api.js";
import { setText } from "./dom.js";
import { refreshEvents, resetEvents } from "./events.js";
import { refreshLogs, setUpLogs, updateReplicaChoices } from "./logs.js";
import { renderHistory, renderStatus } from "./models.js";
import { setUpPlayground, updateModelChoices } from "./playground.js";

const STATUS_MS = 1000;
const SLOW_MS = 2000;

function showError(error) {
  const message =
    error instanceof ApiError && error.status === 401
      ? "an API key is needed"
      : `cannot reach the gateway (${error instanceof Error ? error.message : String(error)})`;
  setText("error", message);
}

async function pollStatus() {
  const status = await getJson("/api/status");
  renderStatus(status, document.getElementById("models"));
  updateModelChoices(status);
  updateReplicaChoices(status);
  setText("updated", `updated ${new Date(status.time).toLocaleTimeString()}`);
  setText("error", "");
}

async function pollHistory() {
  const note = document.getElementById("history-note");
  try {
    renderHistory(await getJson("/api/history"));
    note.hidden = true;
  } catch (error) {
    if (!(error instanceof ApiError && error.status === 404)) throw error;
    note.textContent = "This gateway keeps no history, so there are no charts (berth up keeps one).";
    note.hidden = false;
  }
}

/** Runs `task` now and every `ms` after it settles; returns a function that runs it at once. */
function every(ms, task) {
  let timer;
  const run = async () => {
    clearTimeout(timer);
    try {
      await task();
    } catch (error) {
      showError(error);
    } finally {
      timer = setTimeout(run, ms);
    }
  };
  void run();
  return run;
}

setUpKeyForm();
setUpPlayground();
setUpLogs();
const status = every(STATUS_MS, pollStatus);
const slow = every(SLOW_MS, async () => {
  await Promise.all([pollHistory(), refreshEvents(), refreshLogs()]);
});
onKeyChange(() => {
  resetEvents();
  void status();
  void slow();
});
