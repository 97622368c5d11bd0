// The dashboard's only script: polls GET /api/status once a second and redraws the models and
// their replicas. Request rates come from the change of each model's `completed` count between polls.
// Everything is written with textContent: names and URLs are data, never markup.

const POLL_MS = 1000;
const previous = new Map();

function element(tag, attributes, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes || {})) node.setAttribute(name, value);
  for (const child of children)
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  return node;
}

function figure(label, value, testId) {
  return element("div", {}, element("dt", {}, label), element("dd", { "data-testid": testId }, value));
}

function ratePerSecond(model, now) {
  const before = previous.get(model.name);
  previous.set(model.name, { completed: model.completed, time: now });
  if (!before || now <= before.time) return "–";
  return ((model.completed - before.completed) / ((now - before.time) / 1000)).toFixed(1);
}

function replicaRow(replica, now) {
  const ejected = replica.ejectedUntil && replica.ejectedUntil > now;
  return element(
    "tr",
    { "data-replica": replica.id },
    element("td", {}, replica.id),
    element("td", { class: `state state-${replica.state}` }, replica.state),
    element("td", { class: "number" }, replica.inFlight),
    element("td", { class: "number" }, replica.generation),
    element(
      "td",
      { class: ejected ? "ejected" : "" },
      ejected
        ? `out of rotation ${Math.ceil((replica.ejectedUntil - now) / 1000)} s (${replica.ejectionReason})`
        : "",
    ),
    element("td", {}, replica.url),
  );
}

function modelSection(model, now) {
  const ready = model.replicas.filter((replica) => replica.state === "ready").length;
  const rows = model.replicas.map((replica) => replicaRow(replica, now));
  const table = rows.length
    ? element(
        "table",
        {},
        element(
          "thead",
          {},
          element(
            "tr",
            {},
            ...["replica", "state", "in flight", "generation", "rotation", "url"].map((title) =>
              element("th", {}, title),
            ),
          ),
        ),
        element("tbody", {}, ...rows),
      )
    : element("p", { class: "empty" }, "no replicas (scaled to zero: the next request starts one)");
  return element(
    "section",
    { class: "model", "data-model": model.name },
    element("h2", {}, model.name),
    element(
      "dl",
      { class: "figures" },
      figure("replicas ready", `${ready} / ${model.replicas.length}`, "ready"),
      figure("in flight", model.inFlight, "in-flight"),
      figure("held", model.held, "held"),
      figure("requests/s", ratePerSecond(model, now), "rate"),
      figure("completed", model.completed, "completed"),
      figure("routing", model.strategy, "strategy"),
      figure("auth", model.authEnabled ? "API keys" : "off", "auth"),
    ),
    table,
  );
}

// With auth on, /api/status wants an API key like the API does; it is kept for this tab only.
const KEY_STORAGE = "berth-api-key";

function askForKey() {
  const form = document.getElementById("key-form");
  form.hidden = false;
  form.onsubmit = (event) => {
    event.preventDefault();
    sessionStorage.setItem(KEY_STORAGE, document.getElementById("key").value.trim());
    form.hidden = true;
  };
}

async function poll() {
  try {
    const key = sessionStorage.getItem(KEY_STORAGE);
    const response = await fetch("/api/status", {
      cache: "no-store",
      headers: key ? { authorization: `Bearer ${key}` } : {},
    });
    if (response.status === 401) {
      askForKey();
      throw new Error("an API key is needed");
    }
    if (!response.ok) throw new Error(`status ${response.status}`);
    const status = await response.json();
    const sections = status.models.map((model) => modelSection(model, status.time));
    document.getElementById("models").replaceChildren(...sections);
    document.getElementById("updated").textContent = `updated ${new Date(status.time).toLocaleTimeString()}`;
    document.getElementById("error").textContent = "";
  } catch (error) {
    document.getElementById("error").textContent = `cannot reach the gateway (${error.message})`;
  } finally {
    setTimeout(poll, POLL_MS);
  }
}

poll();
