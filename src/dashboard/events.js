// The controller's events (GET /api/events), newest first: only events after the last one seen
// are fetched; the list keeps the latest 200.
import { ApiError, getJson } from "./api.js";
import { element, formatTime } from "./dom.js";

const KEEP = 200;
let lastSeq;

function eventItem(event) {
  return element(
    "li",
    { "data-event": event.type, "data-seq": event.seq },
    element("time", { datetime: new Date(event.at).toISOString() }, formatTime(event.at)),
    " ",
    element("span", { class: `event-type event-${event.type}` }, event.type),
    " ",
    element(
      "span",
      { class: "event-model" },
      event.replica ? `${event.model} · ${event.replica}` : event.model,
    ),
    " ",
    element("span", { class: "event-message" }, event.message),
  );
}

export async function refreshEvents() {
  const list = document.getElementById("events");
  const note = document.getElementById("events-note");
  try {
    const { events } = await getJson(lastSeq === undefined ? "/api/events" : `/api/events?after=${lastSeq}`);
    note.hidden = true;
    if (events.length === 0) return;
    lastSeq = events[events.length - 1].seq;
    list.prepend(...events.map(eventItem).reverse());
    while (list.children.length > KEEP) list.lastElementChild.remove();
  } catch (error) {
    if (error instanceof ApiError && error.status === 404) {
      note.textContent = "This gateway runs without berth up: it has no controller events.";
      note.hidden = false;
      return;
    }
    throw error;
  }
}

/** A new key may show a different set of events: start over. */
export function resetEvents() {
  lastSeq = undefined;
  document.getElementById("events").replaceChildren();
}
