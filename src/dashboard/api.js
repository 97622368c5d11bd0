// The console's one way to the gateway: fetch with the API key from session storage (never
// localStorage, never a cookie), and the key prompt shown when the gateway answers 401.

const KEY_STORAGE = "berth-api-key";
const keyListeners = new Set();

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

export function authHeaders() {
  const key = sessionStorage.getItem(KEY_STORAGE);
  return key ? { authorization: `Bearer ${key}` } : {};
}

/** Called (once) with no arguments whenever a new key is entered. */
export function onKeyChange(listener) {
  keyListeners.add(listener);
}

export function askForKey() {
  const form = document.getElementById("key-form");
  if (!form.hidden) return;
  form.hidden = false;
  document.getElementById("key").focus();
}

export function setUpKeyForm() {
  const form = document.getElementById("key-form");
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const input = document.getElementById("key");
    sessionStorage.setItem(KEY_STORAGE, input.value.trim());
    input.value = "";
    form.hidden = true;
    for (const listener of keyListeners) listener();
  });
}

/** An error body in OpenAI's shape turned into an ApiError; a 401 also shows the key prompt. */
export async function errorFrom(response) {
  let code = `HTTP_${response.status}`;
  let message = `the gateway answered ${response.status}`;
  try {
    const body = await response.json();
    if (body?.error) {
      code = String(body.error.code ?? code);
      message = String(body.error.message ?? message);
    }
  } catch {
    // Not JSON: keep the status line.
  }
  if (response.status === 401) askForKey();
  return new ApiError(response.status, code, message);
}

export async function getJson(path) {
  const response = await fetch(path, { cache: "no-store", headers: authHeaders() });
  if (!response.ok) throw await errorFrom(response);
  return response.json();
}
