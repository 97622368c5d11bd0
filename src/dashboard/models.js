// One section per model: figures (replicas, load, counters), the replicas table and the model's
// charts. Sections stay in place between polls (the charts keep their canvas); values are updated.
import { ModelCharts } from "./charts.js";
import { element } from "./dom.js";

const FIGURES = [
  ["ready", "replicas ready"],
  ["in-flight", "in flight"],
  ["held", "held"],
  ["rate", "requests/s"],
  ["completed", "completed"],
  ["strategy", "routing"],
  ["auth", "auth"],
];

const sections = new Map();
const previousCounts = new Map();

function ratePerSecond(model, now) {
  const before = previousCounts.get(model.name);
  previousCounts.set(model.name, { completed: model.completed, time: now });
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

function replicaTable(model, now) {
  if (model.replicas.length === 0)
    return element("p", { class: "empty" }, "no replicas (scaled to zero: the next request starts one)");
  return element(
    "table",
    {},
    element("caption", { class: "visually-hidden" }, `Replicas of ${model.name}`),
    element(
      "thead",
      {},
      element(
        "tr",
        {},
        ...["replica", "state", "in flight", "generation", "rotation", "url"].map((title) =>
          element("th", { scope: "col" }, title),
        ),
      ),
    ),
    element("tbody", {}, ...model.replicas.map((replica) => replicaRow(replica, now))),
  );
}

function createSection(name) {
  const headingId = `model-${sections.size}-title`;
  const values = {};
  const figures = element(
    "dl",
    { class: "figures" },
    ...FIGURES.map(([testId, label]) => {
      values[testId] = element("dd", { "data-testid": testId }, "–");
      return element("div", {}, element("dt", {}, label), values[testId]);
    }),
  );
  const tableHolder = element("div", { class: "replicas" });
  const chartsHolder = element("div", { class: "charts" });
  const root = element(
    "section",
    { class: "model", "data-model": name, "aria-labelledby": headingId },
    element("h3", { id: headingId }, name),
    figures,
    chartsHolder,
    tableHolder,
  );
  const section = { root, values, tableHolder, charts: new ModelCharts(name, chartsHolder) };
  sections.set(name, section);
  return section;
}

/** Draws GET /api/status into the container. */
export function renderStatus(status, container) {
  const now = status.time;
  const names = new Set(status.models.map((model) => model.name));
  for (const [name, section] of sections) {
    if (names.has(name)) continue;
    section.charts.destroy();
    section.root.remove();
    sections.delete(name);
  }
  for (const model of status.models) {
    const section = sections.get(model.name) ?? createSection(model.name);
    const ready = model.replicas.filter((replica) => replica.state === "ready").length;
    const shown = {
      ready: `${ready} / ${model.replicas.length}`,
      "in-flight": model.inFlight,
      held: model.held,
      rate: ratePerSecond(model, now),
      completed: model.completed,
      strategy: model.strategy,
      auth: model.authEnabled ? "API keys" : "off",
    };
    for (const [testId, value] of Object.entries(shown)) {
      const node = section.values[testId];
      if (node.textContent !== String(value)) node.textContent = String(value);
    }
    section.tableHolder.replaceChildren(replicaTable(model, now));
    // Sections in the order the gateway lists models.
    container.append(section.root);
  }
}

/** Feeds GET /api/history to each model's charts. */
export function renderHistory(history) {
  for (const [name, section] of sections) section.charts.update(history.models[name] ?? []);
}
