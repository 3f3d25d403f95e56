// One input widget per input kind of the task registry, and a parameters form built from the registry's
// parameter definitions (served by /api/tasks), so the page asks for what the API takes.
//
// buildInput(task).read() -> {inputs, view, args, file}: `inputs` is the JSON body's "inputs", `view` what the
// answer is drawn over (the text, the picture, the table), `args` the Python call's arguments, `file` the
// media file a curl command would send.

import { toBase64 } from "./api.js";
import { field, h } from "./dom.js";
import { imagePicker, audioPicker } from "./media.js";
import { py } from "./snippets.js";

const textArea = (value, rows = 4) => h("textarea", { rows, value: value ?? "" });
const textLine = (value) => h("input", { type: "text", value: value ?? "" });
const need = (value, what) => {
  if (!String(value).trim()) throw new Error(`${what} is empty.`);
  return value;
};

async function media(picker, kind) {
  if (!picker.blob) throw new Error(`Choose ${kind === "image" ? "an image" : "some audio"} first.`);
  return { b64: await toBase64(picker.blob), file: { name: picker.name, type: picker.blob.type }, url: picker.url };
}

function parseCsv(text) {
  const rows = [];
  let row = [], cell = "", quoted = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (quoted) {
      if (ch === '"' && text[i + 1] === '"') (cell += '"'), i++;
      else if (ch === '"') quoted = false;
      else cell += ch;
    } else if (ch === '"') quoted = true;
    else if (ch === ",") row.push(cell), (cell = "");
    else if (ch === "\n" || ch === "\r") {
      if (ch === "\r" && text[i + 1] === "\n") i++;
      row.push(cell), rows.push(row), (row = []), (cell = "");
    } else cell += ch;
  }
  if (cell || row.length) row.push(cell), rows.push(row);
  return rows.filter((r) => r.some((c) => c.trim()));
}

// An editable grid: header cells name the columns; rows can be added, and CSV pasted in.
export function tableGrid(initial) {
  const grid = h("table", { class: "grid" });
  const draw = (columns, rows) => {
    grid.replaceChildren(
      h("thead", {}, h("tr", {}, columns.map((c, j) =>
        h("th", {}, h("input", { value: c, "aria-label": `Column ${j + 1} name` }))))),
      h("tbody", {}, rows.map((r, i) => h("tr", {}, columns.map((_, j) =>
        h("td", {}, h("input", { value: r[j] ?? "", "aria-label": `Row ${i + 1}, column ${j + 1}` })))))),
    );
  };
  const columns = Object.keys(initial || { a: [""] });
  draw(columns, (Object.values(initial || { a: [""] })[0] || []).map((_, i) => columns.map((c) => initial[c][i])));
  const read = () => {
    const names = [...grid.querySelectorAll("thead input")].map((i) => i.value.trim());
    const table = Object.fromEntries(names.map((n) => [n, []]));
    for (const tr of grid.querySelectorAll("tbody tr")) {
      const cells = [...tr.querySelectorAll("input")].map((i) => i.value);
      if (cells.every((c) => !c.trim())) continue;
      names.forEach((n, j) => table[n].push(cells[j]));
    }
    return table;
  };
  const addRow = () => {
    const t = read();
    const cols = Object.keys(t);
    const rows = (t[cols[0]] || []).map((_, i) => cols.map((c) => t[c][i]));
    draw(cols, [...rows, cols.map(() => "")]);
  };
  const addColumn = () => {
    const t = read();
    const cols = [...Object.keys(t), `column ${Object.keys(t).length + 1}`];
    const n = Object.values(t)[0]?.length || 1;
    draw(cols, [...Array(n).keys()].map((i) => cols.map((c) => t[c]?.[i] ?? "")));
  };
  const csv = h("textarea", { rows: 4, placeholder: "name,age\nAda,36" });
  const useCsv = () => {
    const [head, ...rows] = parseCsv(csv.value);
    if (head) draw(head, rows);
  };
  const root = h("div", { class: "table-input" },
    h("div", { class: "scroll" }, grid),
    h("div", { class: "row" },
      h("button", { type: "button", onclick: addRow }, "Add row"),
      h("button", { type: "button", onclick: addColumn }, "Add column")),
    h("details", {}, h("summary", {}, "Paste CSV"), field("CSV, header first", csv),
      h("button", { type: "button", onclick: useCsv }, "Use this CSV")));
  return { root, read, grid };
}

export function buildInput(task) {
  const ex = task.example_input;
  const kind = task.input_kind;
  if (kind === "image" || kind === "audio" || kind === "image-question") {
    const picker = kind === "audio" ? audioPicker() : imagePicker();
    const question = kind === "image-question" ? textLine(ex?.question) : null;
    return {
      root: h("div", {}, picker.root, question && field("Question", question)),
      picker,
      async read() {
        const m = await media(picker, kind === "audio" ? "audio" : "image");
        const view = { url: m.url, file: m.file };
        if (!question) return { inputs: m.b64, view, args: [py(m.file.name)], file: m.file };
        const q = need(question.value, "The question");
        return { inputs: { image: m.b64, question: q }, view, args: [py(m.file.name), `question=${py(q)}`],
          file: m.file, fileKey: "image" };
      },
    };
  }
  if (kind === "question-context") {
    const question = textLine(ex?.question), context = textArea(ex?.context, 5);
    return {
      root: h("div", {}, field("Question", question), field("Context", context)),
      read: async () => {
        const q = need(question.value, "The question"), c = need(context.value, "The context");
        return { inputs: { question: q, context: c }, view: { context: c },
          args: [`question=${py(q)}`, `context=${py(c)}`] };
      },
    };
  }
  if (kind === "sentences") {
    const source = textLine(ex?.source_sentence);
    const others = textArea((ex?.sentences || []).join("\n"), 4);
    return {
      root: h("div", {}, field("Source sentence", source),
        field("Sentences to compare", others, "One per line.")),
      read: async () => {
        const s = need(source.value, "The source sentence");
        const list = others.value.split("\n").map((l) => l.trim()).filter(Boolean);
        need(list.join(""), "The list of sentences");
        return { inputs: { source_sentence: s, sentences: list }, view: { sentences: list }, args: [py(s), py(list)] };
      },
    };
  }
  if (kind === "table" || kind === "table-query") {
    const grid = tableGrid(kind === "table" ? ex : ex?.table);
    const query = kind === "table-query" ? textLine(ex?.query) : null;
    return {
      root: h("div", {}, grid.root, query && field("Question about the table", query)),
      read: async () => {
        const table = grid.read();
        if (!query) return { inputs: { data: table }, view: { table, grid: grid.grid }, args: [py(table)] };
        const q = need(query.value, "The question");
        return { inputs: { query: q, table }, view: { table, grid: grid.grid }, args: [`table=${py(table)}`, `query=${py(q)}`] };
      },
    };
  }
  if (kind === "conversation") {
    const text = textArea(ex?.text, 2);
    const history = { past_user_inputs: [], generated_responses: [] };
    // The turns so far, shown as they are sent along with the next message.
    const log = h("ol", { class: "chat-log", "aria-label": "Conversation so far", hidden: true });
    return {
      root: h("div", {}, log, field("Your message", text, "The conversation so far is sent along.")),
      read: async () => {
        const t = need(text.value, "The message");
        const inputs = { text: t, ...structuredClone(history) };
        const args = [py(t)];
        if (history.past_user_inputs.length) {
          args.push(`generated_responses=${py(history.generated_responses)}`,
            `past_user_inputs=${py(history.past_user_inputs)}`);
        }
        return { inputs, view: { text: t }, args };
      },
      remember(answer, sent) {
        const reply = answer?.generated_text ?? "";
        history.past_user_inputs.push(sent.text);
        history.generated_responses.push(reply);
        log.append(h("li", { class: "user" }, sent.text), h("li", { class: "assistant" }, reply));
        log.hidden = false;
        text.value = "";
      },
    };
  }
  // text
  const text = textArea(ex, task.id === "text-to-speech" ? 2 : 4);
  text.classList.add("main");
  const label = { "text-to-speech": "Text to read", "text-to-image": "Prompt", "text-generation": "Prompt" };
  return {
    root: field(label[task.id] || "Text", text, "Ctrl+Enter sends."),
    read: async () => {
      const t = need(text.value, "The text");
      return { inputs: t, view: { text: t }, args: [py(t)] };
    },
  };
}

// Example values for parameters a task cannot run without (zero-shot labels come from its example answer).
function exampleValue(task, p) {
  if (p.name === "candidate_labels" && Array.isArray(task.example_output))
    return task.example_output.map((o) => o.label).join(", ");
  return "";
}

export function buildParams(task, parameters = task.parameters) {
  const rows = parameters.map((p) => {
    const title = p.name.replaceAll("_", " ");
    let control;
    let read;
    if (p.enum) {
      control = h("select", {}, h("option", { value: "" }, "(server default)"),
        p.enum.map((v) => h("option", { value: JSON.stringify(v) }, String(v))));
      read = () => (control.value ? JSON.parse(control.value) : undefined);
    } else if (p.type === "boolean") {
      control = h("input", { type: "checkbox" });
      read = () => (control.checked ? true : undefined);
    } else if (p.type === "integer" || p.type === "number") {
      control = h("input", { type: "number", step: p.type === "integer" ? "1" : "any",
        min: p.minimum ?? undefined, max: p.maximum ?? undefined, inputmode: "decimal" });
      read = () => (control.value === "" ? undefined : Number(control.value));
    } else if (p.type === "array") {
      control = h("input", { type: "text", value: exampleValue(task, p) });
      read = () => {
        const items = control.value.split(",").map((s) => s.trim()).filter(Boolean);
        return items.length ? items : undefined;
      };
    } else if (p.type === "object") {
      control = h("textarea", { rows: 2, placeholder: '{"key": "value"}' });
      read = () => {
        if (!control.value.trim()) return undefined;
        try {
          return JSON.parse(control.value);
        } catch {
          throw new Error(`Parameter ${p.name} is not valid JSON.`);
        }
      };
    } else {
      control = h("input", { type: "text" });
      read = () => control.value || undefined;
    }
    control.name = p.name;
    const hint = p.type === "array" ? `${p.description} Comma-separated.` : p.description;
    return { name: p.name, row: field(title, control, hint), read };
  });
  const needed = parameters.some((p) => p.name === "candidate_labels");
  const root = rows.length
    ? h("details", { class: "params", open: needed }, h("summary", {}, `Parameters (${rows.length})`),
      h("div", { class: "param-grid" }, rows.map((r) => r.row)))
    : h("div");
  return {
    root,
    read: () => Object.fromEntries(rows.map((r) => [r.name, r.read()]).filter(([, v]) => v !== undefined)),
  };
}
