// A small element builder: h("button", {type: "submit", onclick: f}, "Send").
// Attributes go through setAttribute (so `for`, `aria-*` and `data-*` work); `on*` keys add listeners.

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on") && typeof value === "function") el.addEventListener(name.slice(2), value);
    else if (name === "value") el.value = value;
    else el.setAttribute(name, value === true ? "" : String(value));
  }
  append(el, children);
  return el;
}

export function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

let counter = 0;
// A fresh id for label/input pairs.
export const uid = (stem) => `${stem}-${++counter}`;

// A labelled control: the label, the control, and its description read by screen readers.
export function field(labelText, control, hint) {
  control.id ||= uid("f");
  const hintEl = hint ? h("small", { id: uid("hint"), class: "hint" }, hint) : null;
  if (hintEl) control.setAttribute("aria-describedby", hintEl.id);
  return h("div", { class: "field" }, h("label", { for: control.id }, labelText), control, hintEl);
}
