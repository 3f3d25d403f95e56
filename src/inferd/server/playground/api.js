// Calls to this server: the API key from the tab's session storage, errors as the server's own message,
// and a 503 `model_loading` turned into progress until the model is ready.

const KEY = "inferd-api-key";

export const apiKey = {
  get: () => sessionStorage.getItem(KEY),
  set: (value) => sessionStorage.setItem(KEY, value),
  clear: () => sessionStorage.removeItem(KEY),
  required: () => document.querySelector('meta[name="inferd-api-key"]')?.content === "required",
};

export class ApiError extends Error {
  constructor(message, status, type, body) {
    super(message);
    this.status = status;
    this.type = type;
    this.body = body;
  }
}

// Listeners told when the server refuses the key (the page then asks for it again).
export const onUnauthorized = new Set();

export function headers(extra = {}) {
  const key = apiKey.get();
  return key ? { ...extra, Authorization: `Bearer ${key}` } : { ...extra };
}

// The error a failed response carries: {"error", "error_type"} (HF, TGI) or {"error": {"message"}} (OpenAI).
export async function errorOf(response) {
  const text = await response.text();
  let body = null;
  try {
    body = JSON.parse(text);
  } catch {
    // not JSON: a proxy's page, say; its text is still the best message there is
  }
  const err = body?.error;
  const message =
    typeof err === "string" ? err : err?.message || text || `${response.status} ${response.statusText}`;
  const type = body?.error_type || err?.type || String(response.status);
  return new ApiError(message, response.status, type, body);
}

export async function request(path, { method = "GET", body, accept, signal, wait = true } = {}) {
  const extra = {};
  if (!wait) extra["X-Wait-For-Model"] = "false";
  if (body !== undefined) extra["Content-Type"] = "application/json";
  if (accept) extra.Accept = accept;
  const response = await fetch(path, {
    method,
    headers: headers(extra),
    body: body === undefined ? undefined : JSON.stringify(body),
    signal,
  });
  if (response.status === 401) onUnauthorized.forEach((f) => f());
  return response;
}

export async function getJson(path) {
  const response = await request(path);
  if (!response.ok) throw await errorOf(response);
  return response.json();
}

const sleep = (ms, signal) =>
  new Promise((resolve, reject) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener("abort", () => {
      clearTimeout(timer);
      reject(new DOMException("stopped", "AbortError"));
    });
  });

// POST until the model is loaded: each 503 `model_loading` calls onLoading(elapsed s, estimated s) and waits
// (the server's Retry-After, at most a second, so the answer comes soon after the model is ready). The server
// would hold the request while the model loads; asking it not to lets the page show the load's progress.
export async function postUntilLoaded(path, body, { accept, signal, onLoading }) {
  const started = performance.now();
  for (;;) {
    const response = await request(path, { method: "POST", body, accept, signal, wait: false });
    if (response.status !== 503) return response;
    const error = await errorOf(response.clone());
    if (error.type !== "model_loading") return response;
    const estimated = Number(error.body?.estimated_time) || 1;
    onLoading((performance.now() - started) / 1000, estimated);
    const retry = Number(response.headers.get("Retry-After")) || 1;
    await sleep(Math.min(retry, 1) * 1000, signal);
  }
}

// The timing headers every inference answer carries, as [name, value] pairs.
export function computeHeaders(response) {
  return [...response.headers.entries()].filter(
    ([name]) => name.startsWith("x-compute-") || ["x-queue-time", "x-inference-time", "x-inferd-approximation",
      "x-prompt-tokens", "x-generated-tokens"].includes(name),
  );
}

export function toBase64(blob) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(String(reader.result).split(",", 2)[1]);
    reader.onerror = () => reject(reader.error);
    reader.readAsDataURL(blob);
  });
}
