// The request a widget just sent, as a command to paste: curl, and Python with inferd's InferenceClient
// (the same calls as huggingface_hub's). The key is never written out: it is read from $INFERD_API_KEY.

import { apiKey } from "./api.js";

// A Python literal for a JSON value.
export function py(value) {
  if (value === null || value === undefined) return "None";
  if (value === true) return "True";
  if (value === false) return "False";
  if (typeof value === "number") return String(value);
  if (typeof value === "string") return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map(py).join(", ")}]`;
  return `{${Object.entries(value).map(([k, v]) => `${JSON.stringify(k)}: ${py(v)}`).join(", ")}}`;
}

const shellQuote = (s) => `'${s.replaceAll("'", `'\\''`)}'`;
const keyed = () => apiKey.get() !== null;

function curlHead(url) {
  const lines = [`curl ${url}`];
  if (keyed()) lines.push(`  -H "Authorization: Bearer $INFERD_API_KEY"`);
  return lines;
}

// `body` as sent; media go as raw bytes from a file, or base64 from it when parameters come along.
export function curl(url, body, { file, fileKey, accept, out } = {}) {
  const lines = curlHead(url);
  if (accept) lines.push(`  -H "Accept: ${accept}"`);
  if (file && !fileKey && !Object.keys(body.parameters || {}).length) {
    lines.push(`  -H "Content-Type: ${file.type || "application/octet-stream"}"`, `  --data-binary @${file.name}`);
  } else if (file) {
    const marker = "@@FILE@@";
    const shaped = fileKey ? { ...body, inputs: { ...body.inputs, [fileKey]: marker } } : { ...body, inputs: marker };
    const json = JSON.stringify(shaped).replace(`"${marker}"`, `"$(base64 -w0 ${file.name})"`);
    lines.push(`  -H "Content-Type: application/json"`, `  -d @- <<EOF\n${json}\nEOF`);
  } else {
    lines.push(`  -H "Content-Type: application/json"`, `  -d ${shellQuote(JSON.stringify(body))}`);
  }
  if (out) lines.push(`  -o ${out}`);
  return lines.join(" \\\n");
}

// Parameters whose Python argument has another name than on the wire.
const PY_NAMES = { candidate_labels: "labels" };
// Methods that take their parameters as one dict (v0.21's signature), not one argument each.
const DICT_PARAMETERS = new Set(["conversational"]);

export function python(taskId, model, args, parameters, { out, after } = {}) {
  const method = taskId.replaceAll("-", "_");
  const kwargs = DICT_PARAMETERS.has(taskId)
    ? (Object.keys(parameters).length ? [`parameters=${py(parameters)}`] : [])
    : Object.entries(parameters).map(([k, v]) => `${PY_NAMES[k] || k}=${py(v)}`);
  const call = `client.${method}(${[...args, `model=${py(model)}`, ...kwargs].join(", ")})`;
  const lines = [
    "from inferd import InferenceClient  # or: from huggingface_hub import InferenceClient",
    "",
    clientLine(),
    out ? `open(${py(out)}, "wb").write(${call})` : `result = ${call}`,
  ];
  if (!out) lines.push(after || "print(result)");
  return lines.join("\n");
}

export function clientLine() {
  const token = keyed() ? ', token=os.environ["INFERD_API_KEY"]' : "";
  return `${keyed() ? "import os\n" : ""}client = InferenceClient(base_url=${py(location.origin)}${token})`;
}

export function chatCurl(body) {
  return [...curlHead(`${location.origin}/v1/chat/completions`).map((l, i) => (i === 0 ? `curl -N ${l.slice(5)}` : l)),
    `  -H "Content-Type: application/json"`, `  -d ${shellQuote(JSON.stringify(body))}`].join(" \\\n");
}

export function chatPython(body) {
  const { messages, model, stream, ...rest } = body;
  const kwargs = Object.entries(rest).map(([k, v]) => `${k}=${py(v)}`);
  return [
    "from inferd import InferenceClient  # or: from openai import OpenAI(base_url=.../v1)",
    "",
    clientLine(),
    `messages = ${py(messages)}`,
    `for chunk in client.chat_completion(${["messages", `model=${py(model)}`, "stream=True", ...kwargs].join(", ")}):`,
    `    print(chunk.choices[0].delta.content or "", end="", flush=True)`,
  ].join("\n");
}
