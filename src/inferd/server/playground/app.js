// The playground: lists the tasks of this server and their models (/api/tasks) and shows one widget
// per task. The address names the task (#/task/<name>), so a widget can be linked to and reloaded.

import { apiKey, computeHeaders, errorOf, getJson, onUnauthorized, postUntilLoaded, request } from "./api.js";
import { buildChat, chatParameters } from "./chat.js";
import { h } from "./dom.js";
import { buildInput, buildParams } from "./inputs.js";
import { render } from "./outputs.js";
import { curl, python } from "./snippets.js";

const nav = document.getElementById("tasks");
const panel = document.getElementById("task");
const keyForm = document.getElementById("key-form");
let tasks = {};

// Binary answers: saved under these names by the snippets.
const OUT_FILES = { "text-to-speech": "speech.flac", "text-to-image": "image.png", "image-to-image": "image.png" };

function showKey(message) {
  nav.replaceChildren(h("p", { class: "muted" }, "Enter the API key to see the tasks."));
  panel.replaceChildren();
  keyForm.hidden = false;
  const error = document.getElementById("key-error");
  error.hidden = !message;
  error.textContent = message || "";
  document.getElementById("key-input").focus();
}

keyForm.addEventListener("submit", async (e) => {
  e.preventDefault();
  apiKey.set(document.getElementById("key-input").value.trim());
  // Any route that needs the key tells whether it is right; /v1/models is a small one.
  const response = await request("/v1/models");
  if (response.status === 401) return; // onUnauthorized has shown the form again, with the message
  keyForm.hidden = true;
  await load();
});

onUnauthorized.add(() => {
  const had = apiKey.get();
  apiKey.clear();
  showKey(had ? "The server refused this key." : "");
});

function modelLabel(task, id) {
  const model = task.models.find((m) => m.id === id);
  const name = model?.description && model.description !== id ? ` — ${model.description}` : "";
  return `${id}${id === task.widgetModels[0] ? " (default)" : ""}${name}`;
}

function buildNav(current) {
  const served = Object.values(tasks).filter((t) => t.widgetModels.length);
  const missing = Object.values(tasks).filter((t) => !t.widgetModels.length);
  const link = (t) => h("li", {}, h("a", { href: `#/task/${t.id}`, "aria-current": t.id === current ? "page" : undefined,
    class: t.widgetModels.length ? "" : "missing" }, t.label));
  nav.replaceChildren(
    h("h2", {}, "Tasks"), h("ul", {}, served.map(link)),
    missing.length ? h("details", {}, h("summary", {}, `No model yet (${missing.length})`), h("ul", {}, missing.map(link))) : "",
  );
}

function copyButton(pre) {
  return h("button", { type: "button", class: "copy", onclick: async (e) => {
    try {
      await navigator.clipboard.writeText(pre.textContent);
      e.target.textContent = "Copied";
    } catch {
      getSelection().selectAllChildren(pre);
      e.target.textContent = "Selected: press Ctrl+C";
    }
  } }, "Copy");
}

// Time taken, x-compute-* headers, and the request as curl and Python.
function showRequest(box, { seconds, headers, curl: curlText, python: pythonText }) {
  const curlPre = h("pre", { class: "snippet curl" }, curlText);
  const pyPre = h("pre", { class: "snippet python" }, pythonText);
  box.replaceChildren(
    h("p", { class: "took" }, `Answered in ${seconds.toFixed(2)} s.`),
    headers.length ? h("dl", { class: "headers" }, headers.map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)])) : "",
    h("details", { class: "snippets" }, h("summary", {}, "This request as code"),
      h("h3", {}, "curl"), curlPre, copyButton(curlPre), h("h3", {}, "Python"), pyPre, copyButton(pyPre)),
  );
}

function header(task, select) {
  const note = h("p", { class: "note" });
  const update = () => {
    const approx = task.approximations?.[select.value];
    note.hidden = !approx;
    note.textContent = approx ? `Approximation: ${approx}` : "";
  };
  select.addEventListener("change", update);
  update();
  return [h("h2", {}, task.label), h("p", {}, task.summary),
    h("div", { class: "field" }, h("label", { for: "model" }, "Model"), select), note];
}

function showTask(id) {
  const task = tasks[id] || Object.values(tasks).find((t) => t.widgetModels.length);
  if (!task) return panel.replaceChildren(h("p", {}, "This server serves no model."));
  buildNav(task.id);
  document.title = `${task.label} · inferd playground`;
  if (!task.widgetModels.length) {
    return panel.replaceChildren(h("h2", {}, task.label), h("p", {}, task.summary),
      h("p", {}, "No model of this server runs this task. To add one:"), h("pre", { class: "snippet" }, task.note));
  }
  const ids = [task.widgetModels[0], ...task.models.map((m) => m.id).filter((m) => m !== task.widgetModels[0])];
  const select = h("select", { id: "model" }, ids.map((m) => h("option", { value: m }, modelLabel(task, m))));
  const requestBox = h("div", { class: "request" });
  const show = (info) => showRequest(requestBox, info);
  if (task.id === "chat-completion") {
    return panel.replaceChildren(...header(task, select), buildChat(task, { model: () => select.value, show }), requestBox);
  }
  const input = buildInput(task);
  const params = buildParams(task);
  const submit = h("button", { type: "submit" }, "Compute");
  const status = h("div", { class: "status", role: "status" });
  const output = h("div", { class: "output", "aria-live": "polite" });
  const form = h("form", { class: "card", "aria-label": task.label }, input.root, params.root, h("div", { class: "row" }, submit), status);
  form.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) {
      e.preventDefault();
      form.requestSubmit();
    }
  });
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    let sent, parameters;
    try {
      sent = await input.read();
      parameters = params.read();
    } catch (err) {
      return status.replaceChildren(h("p", { class: "error", role: "alert" }, err.message));
    }
    const body = Object.keys(parameters).length ? { inputs: sent.inputs, parameters } : { inputs: sent.inputs };
    const model = select.value;
    const path = `/models/${encodeURI(model)}/pipeline/${task.id}`;
    submit.disabled = true;
    output.replaceChildren();
    output.classList.remove("failed");
    status.replaceChildren(h("p", {}, "Computing…"));
    const started = performance.now();
    try {
      const response = await postUntilLoaded(path, body, {
        onLoading: (elapsed, estimated) => status.replaceChildren(
          h("label", { for: "loading" }, `Loading ${model}… ${elapsed.toFixed(0)} s of about ${estimated.toFixed(0)} s`),
          h("progress", { id: "loading", class: "loading", max: estimated.toFixed(1), value: Math.min(elapsed, estimated).toFixed(1) })),
      });
      if (!response.ok) throw await errorOf(response);
      const json = (response.headers.get("content-type") || "").includes("json");
      const answer = json ? await response.json() : await response.blob();
      const seconds = (performance.now() - started) / 1000;
      status.replaceChildren();
      const drawn = await render(task.id, answer, sent.view);
      const raw = json ? h("details", { class: "raw" }, h("summary", {}, "JSON answer"), h("pre", {}, JSON.stringify(answer, null, 2))) : "";
      output.replaceChildren(drawn, raw);
      input.remember?.(answer, sent.view);
      const out = OUT_FILES[task.id];
      show({ seconds, headers: computeHeaders(response),
        curl: curl(`${location.origin}${path}`, body, { file: sent.file, fileKey: sent.fileKey, out }),
        python: python(task.id, model, sent.args, parameters, { out }) });
    } catch (err) {
      status.replaceChildren();
      output.classList.add("failed");
      output.replaceChildren(h("p", { class: "error", role: "alert" }, err.message,
        err.type ? h("small", {}, ` (${err.status} ${err.type})`) : ""));
    } finally {
      submit.disabled = false;
    }
  });
  panel.replaceChildren(...header(task, select), form, h("h3", { class: "sr-only" }, "Answer"), output, requestBox);
}

async function load() {
  try {
    tasks = await getJson("/api/tasks");
  } catch (err) {
    if (err.status === 401) return;
    nav.replaceChildren(h("p", { class: "error", role: "alert" }, `The server did not list its tasks: ${err.message}`));
    return;
  }
  const generation = tasks["text-generation"];
  if (generation?.widgetModels.length && !tasks["chat-completion"]?.widgetModels?.length) {
    const chat = { ...generation, id: "chat-completion", label: "Chat",
      summary: "Chat with a text-generation model; tokens are streamed (OpenAI's /v1/chat/completions)." };
    tasks = { "chat-completion": chat, ...tasks };
  }
  if (tasks["chat-completion"]) tasks["chat-completion"].parameters = chatParameters(generation || tasks["chat-completion"]);
  showTask(location.hash.replace(/^#\/task\//, ""));
}

window.addEventListener("hashchange", () => {
  if (Object.keys(tasks).length) {
    showTask(location.hash.replace(/^#\/task\//, ""));
    document.getElementById("main").focus();
  }
});

if (apiKey.required() && !apiKey.get()) showKey("");
else load();
