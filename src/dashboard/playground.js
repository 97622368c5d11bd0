// The playground: streams a completion from the gateway's OpenAI endpoint (fetch + ReadableStream,
// server-sent events), shows the text as it comes, the request's time to first token and tokens/s.
// Stop aborts the fetch: the gateway sees the client leave and cancels the generation on the replica.
import { authHeaders, errorFrom } from "./api.js";
import { element, setText } from "./dom.js";

let running;

function readForm() {
  const endpoint = document.getElementById("playground-endpoint").value;
  const model = document.getElementById("playground-model").value;
  const prompt = document.getElementById("playground-prompt").value;
  const maxTokens = Number(document.getElementById("playground-max-tokens").value);
  const body =
    endpoint === "completion" ? { model, prompt } : { model, messages: [{ role: "user", content: prompt }] };
  Object.assign(body, { stream: true, stream_options: { include_usage: true } });
  if (Number.isInteger(maxTokens) && maxTokens > 0) body.max_tokens = maxTokens;
  if (document.getElementById("playground-ignore-eos").checked) body.ignore_eos = true;
  return { path: endpoint === "completion" ? "/v1/completions" : "/v1/chat/completions", body };
}

/** Yields the JSON payload of each `data:` event of a server-sent event stream, until [DONE]. */
async function* serverSentData(stream) {
  const reader = stream.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += value;
      let end = buffer.indexOf("\n\n");
      while (end >= 0) {
        const event = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        end = buffer.indexOf("\n\n");
        const data = event
          .split("\n")
          .filter((line) => line.startsWith("data:"))
          .map((line) => line.slice(5).trimStart())
          .join("\n");
        if (data === "") continue;
        if (data === "[DONE]") return;
        yield JSON.parse(data);
      }
    }
  } finally {
    reader.releaseLock();
  }
}

function showStats(run, now) {
  setText("playground-tokens", String(run.tokens));
  setText(
    "playground-ttft",
    run.firstTokenAt === undefined ? "–" : `${Math.round(run.firstTokenAt - run.startedAt)} ms`,
  );
  const seconds = run.firstTokenAt === undefined ? 0 : (now - run.firstTokenAt) / 1000;
  // Decode speed: tokens after the first, over the time since the first arrived.
  setText("playground-rate", run.tokens > 1 && seconds > 0 ? ((run.tokens - 1) / seconds).toFixed(1) : "–");
}

function setRunning(isRunning, state) {
  document.getElementById("playground-send").disabled = isRunning;
  document.getElementById("playground-stop").disabled = !isRunning;
  setText("playground-state", state);
}

async function send() {
  const { path, body } = readForm();
  const output = document.getElementById("playground-output");
  output.value = "";
  setText("playground-error", "");
  setText("playground-finish", "–");
  setText("playground-request-id", "–");
  const run = {
    abort: new AbortController(),
    startedAt: performance.now(),
    tokens: 0,
    firstTokenAt: undefined,
  };
  running = run;
  showStats(run, run.startedAt);
  setRunning(true, "waiting for the first token");
  try {
    const response = await fetch(path, {
      method: "POST",
      headers: { "content-type": "application/json", ...authHeaders() },
      body: JSON.stringify(body),
      signal: run.abort.signal,
      cache: "no-store",
    });
    setText("playground-request-id", response.headers.get("x-request-id") ?? "–");
    if (!response.ok) throw await errorFrom(response);
    let finish;
    for await (const chunk of serverSentData(response.body)) {
      if (chunk.error) throw new Error(chunk.error.message ?? "the stream ended with an error");
      const choice = chunk.choices?.[0];
      const piece = choice ? (choice.delta ? choice.delta.content : choice.text) : undefined;
      const now = performance.now();
      if (piece) {
        if (run.firstTokenAt === undefined) {
          run.firstTokenAt = now;
          setText("playground-state", "streaming");
        }
        run.tokens += 1;
        output.value += piece;
      }
      if (choice?.finish_reason) finish = choice.finish_reason;
      if (chunk.usage && typeof chunk.usage.completion_tokens === "number")
        run.tokens = chunk.usage.completion_tokens;
      showStats(run, now);
    }
    setText("playground-finish", finish ?? "–");
    setRunning(false, "done");
  } catch (error) {
    if (run.abort.signal.aborted) {
      setText("playground-finish", "stopped");
      setRunning(false, "stopped");
    } else {
      setText("playground-error", error instanceof Error ? error.message : String(error));
      setRunning(false, "failed");
    }
  } finally {
    if (running === run) running = undefined;
  }
}

/** Fills the model picker from GET /api/status, keeping the choice. */
export function updateModelChoices(status) {
  const select = document.getElementById("playground-model");
  const names = status.models.map((model) => model.name);
  if ([...select.options].map((option) => option.value).join("\n") === names.join("\n")) return;
  const chosen = select.value;
  select.replaceChildren(...names.map((name) => element("option", { value: name }, name)));
  if (names.includes(chosen)) select.value = chosen;
}

export function setUpPlayground() {
  document.getElementById("playground-form").addEventListener("submit", (event) => {
    event.preventDefault();
    if (!running) void send();
  });
  document.getElementById("playground-stop").addEventListener("click", () => {
    running?.abort.abort();
  });
}
