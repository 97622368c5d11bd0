// A model's live charts (uPlot, served by the gateway from node_modules): tokens/s, TTFT p50/p95,
// queue and running, replicas desired vs ready, from the gateway's short history (GET /api/history).

import { element, formatNumber } from "./dom.js";
import uPlot from "./vendor/uPlot.esm.js";

const CHARTS = [
  {
    key: "tokens",
    title: "Tokens per second",
    series: [{ label: "tokens/s", stroke: "#1d4ed8", value: (point) => point.tokensPerSecond }],
  },
  {
    key: "ttft",
    title: "Time to first token (ms)",
    series: [
      { label: "p50", stroke: "#047857", value: (point) => point.ttftP50Ms },
      { label: "p95", stroke: "#b45309", value: (point) => point.ttftP95Ms },
    ],
  },
  {
    key: "queue",
    title: "Queue and running",
    series: [
      { label: "queue", stroke: "#b91c1c", value: (point) => point.queue },
      { label: "running", stroke: "#1d4ed8", value: (point) => point.running },
    ],
  },
  {
    key: "replicas",
    title: "Replicas desired vs ready",
    series: [
      // Ready first, desired dashed over it: where they agree, both stay visible.
      { label: "ready", stroke: "#15803d", value: (point) => point.ready },
      { label: "desired", stroke: "#6d28d9", dash: [6, 4], value: (point) => point.desired },
    ],
  },
];

const HEIGHT = 170;

/** x ticks as wall-clock time (one row: uPlot's default adds a date row that crowds small charts). */
function clockLabel(seconds) {
  return new Date(seconds * 1000).toLocaleTimeString([], {
    hour: "2-digit",
    minute: "2-digit",
    second: "2-digit",
  });
}

/** y ticks that fit the axis: 12,500 → 12.5k. */
function compactNumber(value) {
  if (Math.abs(value) >= 10_000) return `${Number((value / 1000).toFixed(1))}k`;
  return Number(value.toFixed(2)).toString();
}

function plotWidth(node) {
  return Math.max(240, Math.floor(node.clientWidth || 320));
}

function summary(definition, points) {
  const last = points[points.length - 1];
  if (!last) return `${definition.title}: no samples yet`;
  return `${definition.title}, latest: ${definition.series
    .map((series) => `${series.label} ${formatNumber(series.value(last))}`)
    .join(", ")}`;
}

export class ModelCharts {
  constructor(model, container) {
    this.charts = CHARTS.map((definition, index) => {
      const captionId = `chart-${model.replace(/[^\w-]/g, "_")}-${definition.key}-${index}`;
      const plotHolder = element("div", { class: "plot" });
      const description = element("p", { class: "visually-hidden" }, summary(definition, []));
      const figure = element(
        "figure",
        { class: "chart", "data-chart": definition.key, "data-points": "0", "aria-labelledby": captionId },
        element("figcaption", { id: captionId }, definition.title),
        description,
        plotHolder,
      );
      container.append(figure);
      const plot = new uPlot(
        {
          width: plotWidth(figure),
          height: HEIGHT,
          cursor: { drag: { x: false, y: false } },
          legend: { live: false },
          scales: { y: { range: (_u, _min, max) => [0, Math.max(1, (max ?? 0) * 1.15)] } },
          axes: [
            { space: 100, values: (_u, splits) => splits.map(clockLabel) },
            { size: 56, values: (_u, splits) => splits.map(compactNumber) },
          ],
          series: [
            {},
            ...definition.series.map((series) => ({
              label: series.label,
              stroke: series.stroke,
              width: 2,
              ...(series.dash ? { dash: series.dash } : {}),
              spanGaps: false,
            })),
          ],
        },
        [[], ...definition.series.map(() => [])],
        plotHolder,
      );
      return { definition, figure, plot, description };
    });
    this.onResize = () => {
      for (const chart of this.charts) chart.plot.setSize({ width: plotWidth(chart.figure), height: HEIGHT });
    };
    window.addEventListener("resize", this.onResize);
  }

  update(points) {
    const times = points.map((point) => point.at / 1000);
    for (const chart of this.charts) {
      chart.plot.setData([times, ...chart.definition.series.map((series) => points.map(series.value))]);
      chart.figure.setAttribute("data-points", String(points.length));
      chart.description.textContent = summary(chart.definition, points);
    }
  }

  destroy() {
    window.removeEventListener("resize", this.onResize);
    for (const chart of this.charts) chart.plot.destroy();
  }
}
