// Answers drawn the way the Hub's widgets draw them: labels as bars, entities as highlighted spans, the
// answer highlighted in its context, boxes and masks over the picture, audio to play, cells in the table.
// render(taskId, answer, view) -> an element; `view` is what the input widget kept (text, picture, table).

import { h } from "./dom.js";

const COLORS = ["#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#42d4f4", "#f032e6", "#9a6324"];
const pct = (score) => `${(100 * score).toFixed(1)}%`;

export function bars(items) {
  const list = h("ol", { class: "bars", "aria-label": "Scores" });
  for (const { label, score } of items) {
    const fill = h("span", { class: "fill" });
    fill.style.width = `${Math.max(0, Math.min(1, score)) * 100}%`;
    list.append(h("li", { class: "bar", "data-label": label },
      h("span", { class: "label" }, label), h("span", { class: "track" }, fill),
      h("span", { class: "score" }, typeof score === "number" ? score.toFixed(3) : "")));
  }
  return list;
}

// Entities as <mark>s in the text, each with its label.
function spans(text, entities) {
  const out = h("p", { class: "entities" });
  let at = 0;
  const sorted = [...entities].filter((e) => Number.isInteger(e.start)).sort((a, b) => a.start - b.start);
  const labels = [...new Set(sorted.map((e) => e.entity_group || e.entity))];
  for (const e of sorted) {
    if (e.start < at) continue;
    const label = e.entity_group || e.entity;
    out.append(text.slice(at, e.start));
    const mark = h("mark", { "data-label": label, title: `${label} ${pct(e.score ?? 0)}` },
      text.slice(e.start, e.end), h("small", {}, label));
    mark.style.setProperty("--tint", COLORS[labels.indexOf(label) % COLORS.length]);
    out.append(mark);
    at = e.end;
  }
  out.append(text.slice(at));
  return sorted.length ? out : h("div", {}, out, h("p", { class: "muted" }, "No entities found."));
}

function answerInContext(context, answer) {
  const p = h("p", { class: "context" });
  const ok = Number.isInteger(answer.start) && answer.end > answer.start;
  if (ok) p.append(context.slice(0, answer.start), h("mark", {}, context.slice(answer.start, answer.end)), context.slice(answer.end));
  else p.append(context);
  return h("div", {}, h("p", { class: "answer" }, h("strong", {}, answer.answer || "(no answer)"),
    ` score ${(answer.score ?? 0).toFixed(3)}`), p);
}

// The picture with an SVG over it whose coordinates are the picture's pixels, so boxes scale with it.
function stage(url, width, height) {
  const img = h("img", { src: url, alt: "The input image with the answer drawn over it" });
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  svg.setAttribute("class", "overlay");
  svg.setAttribute("aria-hidden", "true");
  return { root: h("figure", { class: "stage" }, img, svg), svg };
}

const loaded = (url) =>
  new Promise((resolve, reject) => {
    const img = new Image();
    img.onload = () => resolve(img);
    img.onerror = () => reject(new Error("The image could not be read."));
    img.src = url;
  });

async function boxes(url, detections) {
  const img = await loaded(url);
  const { root, svg } = stage(url, img.naturalWidth, img.naturalHeight);
  const ns = "http://www.w3.org/2000/svg";
  const size = Math.max(12, img.naturalWidth / 40);
  detections.forEach((d, i) => {
    const { xmin, ymin, xmax, ymax } = d.box;
    const color = COLORS[i % COLORS.length];
    const g = document.createElementNS(ns, "g");
    g.setAttribute("class", "box");
    g.setAttribute("data-label", d.label);
    const rect = document.createElementNS(ns, "rect");
    Object.entries({ x: xmin, y: ymin, width: xmax - xmin, height: ymax - ymin, stroke: color }).forEach(
      ([k, v]) => rect.setAttribute(k, v));
    const text = document.createElementNS(ns, "text");
    Object.entries({ x: xmin + 2, y: Math.max(size, ymin - 3), fill: color, "font-size": size }).forEach(
      ([k, v]) => text.setAttribute(k, v));
    text.textContent = `${d.label} ${pct(d.score)}`;
    g.append(rect, text);
    svg.append(g);
  });
  const list = bars(detections.map((d) => ({ label: d.label, score: d.score })));
  return h("div", {}, root, detections.length ? list : h("p", { class: "muted" }, "Nothing found."));
}

// Masks (grey PNGs: white = inside) tinted one colour each on a canvas over the picture.
async function masks(url, segments) {
  const img = await loaded(url);
  const canvas = h("canvas", { class: "overlay masks", width: img.naturalWidth, height: img.naturalHeight });
  const ctx = canvas.getContext("2d");
  const out = ctx.createImageData(canvas.width, canvas.height);
  const scratch = document.createElement("canvas");
  [scratch.width, scratch.height] = [canvas.width, canvas.height];
  const sctx = scratch.getContext("2d", { willReadFrequently: true });
  for (const [i, seg] of segments.entries()) {
    const mask = await loaded(`data:image/png;base64,${seg.mask}`);
    sctx.clearRect(0, 0, scratch.width, scratch.height);
    sctx.drawImage(mask, 0, 0, scratch.width, scratch.height);
    const px = sctx.getImageData(0, 0, scratch.width, scratch.height).data;
    const c = COLORS[i % COLORS.length];
    const rgb = [1, 3, 5].map((k) => parseInt(c.slice(k, k + 2), 16));
    for (let p = 0; p < px.length; p += 4) {
      if (px[p] < 128) continue;
      out.data.set([...rgb, 140], p);
    }
  }
  ctx.putImageData(out, 0, 0);
  const figure = h("figure", { class: "stage" }, h("img", { src: url, alt: "The input image with the masks over it" }), canvas);
  const legend = h("ul", { class: "legend" }, segments.map((s, i) => {
    const swatch = h("span", { class: "swatch" });
    swatch.style.background = COLORS[i % COLORS.length];
    return h("li", { "data-label": s.label }, swatch, s.label, s.score == null ? "" : ` ${pct(s.score)}`);
  }));
  return h("div", {}, figure, legend);
}

function audio(blob, name) {
  const url = URL.createObjectURL(blob);
  return h("div", { class: "audio-out" }, h("audio", { controls: true, src: url, "aria-label": "Answer audio" }),
    h("a", { href: url, download: name }, `Download ${name}`));
}

function picture(blob) {
  const url = URL.createObjectURL(blob);
  const ext = blob.type.split("/")[1] || "png";
  return h("div", {}, h("img", { class: "generated", src: url, alt: "Generated image" }),
    h("p", {}, h("a", { href: url, download: `image.${ext}` }, `Download image.${ext}`)));
}

function transcript(answer) {
  const text = h("p", { class: "transcript" }, answer.text ?? String(answer));
  if (!answer.chunks?.length) return text;
  const rows = answer.chunks.map((c) => h("tr", {}, h("td", {}, (c.timestamp || []).map((t) => t?.toFixed?.(2) ?? "…").join(" – ")), h("td", {}, c.text)));
  return h("div", {}, text, h("table", { class: "chunks" }, h("thead", {}, h("tr", {}, h("th", {}, "Seconds"), h("th", {}, "Text"))), h("tbody", {}, rows)));
}

function tableAnswer(answer, view) {
  const cells = view.grid.querySelectorAll("tbody tr");
  view.grid.querySelectorAll(".hit").forEach((td) => td.classList.remove("hit"));
  for (const [r, c] of answer.coordinates || []) cells[r]?.children[c]?.classList.add("hit");
  return h("div", {}, h("p", { class: "answer" }, h("strong", {}, answer.answer)),
    answer.aggregator && answer.aggregator !== "NONE" ? h("p", { class: "muted" }, `Aggregator: ${answer.aggregator}; cells: ${(answer.cells || []).join(", ")}`) : "",
    h("p", { class: "muted" }, "The cells used are highlighted in the table."));
}

function perRow(values, view) {
  const cols = Object.keys(view.table);
  const rows = view.table[cols[0]] || [];
  return h("table", { class: "grid results" }, h("thead", {}, h("tr", {}, h("th", {}, "Row"), h("th", {}, "Prediction"))),
    h("tbody", {}, rows.map((_, i) => h("tr", {}, h("td", {}, i + 1), h("td", { class: "prediction" }, String(values[i]))))));
}

const text = (s) => h("p", { class: "generated-text" }, s);
const firstText = (answer, key) => (Array.isArray(answer) ? answer[0]?.[key] : answer?.[key]) ?? "";

export async function render(taskId, answer, view) {
  switch (taskId) {
    case "text-classification":
      return bars(Array.isArray(answer[0]) ? answer[0] : answer);
    case "zero-shot-classification":
    case "zero-shot-image-classification":
      return bars(Array.isArray(answer) ? answer : answer.labels.map((label, i) => ({ label, score: answer.scores[i] })));
    case "image-classification":
    case "audio-classification":
      return bars(answer);
    case "fill-mask":
      return bars(answer.map((a) => ({ label: a.sequence || a.token_str, score: a.score })));
    case "document-question-answering":
    case "visual-question-answering":
      return bars((Array.isArray(answer) ? answer : [answer]).map((a) => ({ label: a.answer, score: a.score })));
    case "token-classification":
      return spans(view.text, answer);
    case "question-answering":
      return answerInContext(view.context, Array.isArray(answer) ? answer[0] : answer);
    case "sentence-similarity":
      return bars(view.sentences.map((label, i) => ({ label, score: answer[i] })));
    case "feature-extraction": {
      const flat = answer.flat(Infinity);
      const shape = [];
      for (let a = answer; Array.isArray(a); a = a[0]) shape.push(a.length);
      return h("div", {}, h("p", {}, `A vector of shape [${shape.join(", ")}]: ${flat.length} numbers.`),
        h("p", { class: "mono" }, flat.slice(0, 12).map((x) => x.toFixed(4)).join(", "), flat.length > 12 ? ", …" : ""));
    }
    case "summarization":
      return text(firstText(answer, "summary_text"));
    case "translation":
      return text(firstText(answer, "translation_text"));
    case "text-generation":
    case "image-to-text":
    case "conversational":
      return text(firstText(answer, "generated_text"));
    case "automatic-speech-recognition":
      return transcript(answer);
    case "object-detection":
      return boxes(view.url, answer);
    case "image-segmentation":
      return masks(view.url, answer);
    case "text-to-speech":
      return audio(answer, `speech.${answer.type.includes("wav") ? "wav" : "flac"}`);
    case "audio-to-audio":
      return h("div", {}, answer.map((a, i) => {
        const bytes = Uint8Array.from(atob(a.blob), (ch) => ch.charCodeAt(0));
        const type = a["content-type"] || "audio/flac";
        return h("div", {}, h("p", {}, a.label), audio(new Blob([bytes], { type }), `${a.label || `audio-${i}`}.${type.split("/")[1]}`));
      }));
    case "text-to-image":
    case "image-to-image":
      return picture(answer);
    case "table-question-answering":
      return tableAnswer(answer, view);
    case "tabular-classification":
    case "tabular-regression":
      return perRow(answer, view);
    default:
      return h("pre", {}, JSON.stringify(answer, null, 2));
  }
}
