// Chat with a text-generation model through /v1/chat/completions, tokens streamed as server-sent events.
// Stop aborts the request: the server sees the connection close and cancels the generation.

import { computeHeaders, errorOf, postUntilLoaded } from "./api.js";
import { field, h } from "./dom.js";
import { buildParams } from "./inputs.js";
import { chatCurl, chatPython } from "./snippets.js";

// OpenAI's names for the text-generation parameters the chat route takes (limits from the task registry).
const OPENAI_NAMES = { max_new_tokens: "max_tokens", temperature: "temperature", top_p: "top_p", seed: "seed" };

export function chatParameters(textGeneration) {
  return textGeneration.parameters
    .filter((p) => p.name in OPENAI_NAMES)
    .map((p) => ({ ...p, name: OPENAI_NAMES[p.name] }));
}

// Server-sent events, line by line (the spec's parser): calls onData(data) for each event.
export function sseParser(onData) {
  let buffer = "";
  let data = [];
  return (chunk) => {
    buffer += chunk;
    for (;;) {
      const at = buffer.search(/[\r\n]/);
      if (at < 0 || (buffer[at] === "\r" && at === buffer.length - 1)) return;
      const line = buffer.slice(0, at);
      buffer = buffer.slice(at + (buffer[at] === "\r" && buffer[at + 1] === "\n" ? 2 : 1));
      if (line === "") {
        if (data.length) onData(data.join("\n"));
        data = [];
        continue;
      }
      if (line.startsWith(":")) continue; // a comment (keep-alive)
      const colon = line.indexOf(":");
      const name = colon < 0 ? line : line.slice(0, colon);
      let value = colon < 0 ? "" : line.slice(colon + 1);
      if (value.startsWith(" ")) value = value.slice(1);
      if (name === "data") data.push(value);
    }
  };
}

export function buildChat(task, { model, show }) {
  const system = h("textarea", { rows: 2, value: "You are a helpful assistant. Answer briefly." });
  const message = h("textarea", { rows: 2, value: "What is the capital of France?" });
  const params = buildParams(task, task.parameters);
  const log = h("ol", { class: "chat-log", "aria-live": "polite", "aria-label": "Conversation" });
  const send = h("button", { type: "submit" }, "Send");
  const stop = h("button", { type: "button", class: "stop", disabled: true }, "Stop");
  const clear = h("button", { type: "button" }, "New conversation");
  const status = h("p", { class: "muted", role: "status" });
  const history = [];
  let controller = null;

  const form = h("form", { class: "card", "aria-label": "Chat" },
    field("System prompt", system), h("div", { class: "chat-frame" }, log),
    field("Your message", message, "Enter sends, Shift+Enter starts a new line."), params.root,
    h("div", { class: "row" }, send, stop, clear), status);

  message.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      form.requestSubmit();
    }
  });
  stop.addEventListener("click", () => controller?.abort());
  clear.addEventListener("click", () => {
    history.length = 0;
    log.replaceChildren();
  });

  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const text = message.value.trim();
    if (!text || controller) return;
    let extra;
    try {
      extra = params.read();
    } catch (err) {
      status.textContent = err.message;
      return;
    }
    history.push({ role: "user", content: text });
    log.append(h("li", { class: "user" }, h("span", { class: "who" }, "You"), text));
    message.value = "";
    const reply = h("div", { class: "content" });
    const item = h("li", { class: "assistant streaming" }, h("span", { class: "who" }, "Assistant"), reply);
    log.append(item);
    const messages = [...(system.value.trim() ? [{ role: "system", content: system.value.trim() }] : []), ...history];
    const body = { model: model(), messages, stream: true, ...extra };
    controller = new AbortController();
    send.disabled = true;
    stop.disabled = false;
    status.textContent = "Waiting for the first token…";
    const started = performance.now();
    let firstToken = null;
    let response = null;
    let outcome = "done";
    try {
      response = await postUntilLoaded("/v1/chat/completions", body, {
        signal: controller.signal,
        onLoading: (elapsed, estimated) => (status.textContent = `Loading the model… ${elapsed.toFixed(0)} s of about ${estimated.toFixed(0)} s`),
      });
      if (!response.ok) throw await errorOf(response);
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      let finished = false;
      const feed = sseParser((data) => {
        if (data === "[DONE]") return void (finished = true);
        const chunk = JSON.parse(data);
        if (chunk.error) throw new Error(chunk.error.message || String(chunk.error));
        const delta = chunk.choices?.[0]?.delta?.content;
        if (delta) {
          firstToken ??= performance.now();
          reply.textContent += delta;
          status.textContent = "Streaming…";
        }
      });
      while (!finished) {
        const { value, done } = await reader.read();
        if (done) break;
        feed(value);
      }
    } catch (err) {
      if (err.name === "AbortError") outcome = "stopped";
      else {
        outcome = "error";
        item.append(h("p", { class: "error", role: "alert" }, err.message));
      }
    } finally {
      controller = null;
      send.disabled = false;
      stop.disabled = true;
      item.classList.remove("streaming");
      item.dataset.outcome = outcome;
      if (reply.textContent) history.push({ role: "assistant", content: reply.textContent });
      const total = (performance.now() - started) / 1000;
      const first = firstToken ? `, first token after ${((firstToken - started) / 1000).toFixed(2)} s` : "";
      status.textContent = `${{ stopped: "Stopped", error: "Failed", done: "Finished" }[outcome]} after ${total.toFixed(2)} s${first}.`;
      show({ seconds: total, headers: response ? computeHeaders(response) : [], curl: chatCurl(body), python: chatPython(body) });
    }
  });
  return form;
}
