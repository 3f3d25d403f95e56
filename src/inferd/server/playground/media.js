// Picking media: an image by drag-and-drop, paste or file picker; audio by file picker or the microphone.
// Each picker keeps one Blob (`picker.blob`) and its file name, and previews it.

import { h } from "./dom.js";

function dropZone(kind, accept, onFile) {
  const input = h("input", { type: "file", accept, class: "file", "aria-label": `Choose ${kind} file` });
  input.addEventListener("change", () => input.files[0] && onFile(input.files[0]));
  const zone = h(
    "div",
    { class: "drop", tabindex: "0", "aria-label": `${kind}: drop a file here, paste one, or choose a file` },
    h("p", {}, `Drop ${kind === "image" ? "an image" : "an audio file"} here`,
      kind === "image" ? ", paste one" : "", ", or choose a file: "),
    input,
  );
  zone.addEventListener("dragover", (e) => {
    e.preventDefault();
    zone.classList.add("over");
  });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (e) => {
    e.preventDefault();
    zone.classList.remove("over");
    const file = [...(e.dataTransfer?.files || [])].find((f) => f.type.startsWith(`${kind}/`));
    if (file) onFile(file);
  });
  return { zone, input };
}

export function imagePicker() {
  const preview = h("img", { class: "preview", alt: "", hidden: true });
  const picker = { blob: null, name: "", url: "" };
  const set = (file) => {
    if (picker.url) URL.revokeObjectURL(picker.url);
    picker.blob = file;
    picker.name = file.name && file.name !== "image.png" ? file.name : "photo.png";
    picker.url = URL.createObjectURL(file);
    preview.src = picker.url;
    preview.alt = `Input image ${picker.name}`;
    preview.hidden = false;
  };
  const { zone, input } = dropZone("image", "image/*", set);
  // Paste anywhere on the page while this task is shown (a screenshot from the clipboard, say).
  const onPaste = (e) => {
    if (!zone.isConnected) return document.removeEventListener("paste", onPaste);
    const item = [...(e.clipboardData?.items || [])].find((i) => i.type.startsWith("image/"));
    if (item) set(item.getAsFile());
  };
  document.addEventListener("paste", onPaste);
  picker.root = h("div", { class: "picker" }, zone, preview);
  picker.input = input;
  return picker;
}

// Mono 16-bit PCM WAV: what every server reads, unlike the WebM/Opus MediaRecorder makes.
function wav(buffer) {
  const rate = buffer.sampleRate;
  const channels = [...Array(buffer.numberOfChannels).keys()].map((c) => buffer.getChannelData(c));
  const frames = buffer.length;
  const out = new DataView(new ArrayBuffer(44 + frames * 2));
  const text = (offset, s) => [...s].forEach((ch, i) => out.setUint8(offset + i, ch.charCodeAt(0)));
  text(0, "RIFF");
  out.setUint32(4, 36 + frames * 2, true);
  text(8, "WAVEfmt ");
  out.setUint32(16, 16, true);
  out.setUint16(20, 1, true); // PCM
  out.setUint16(22, 1, true); // mono
  out.setUint32(24, rate, true);
  out.setUint32(28, rate * 2, true);
  out.setUint16(32, 2, true);
  out.setUint16(34, 16, true);
  text(36, "data");
  out.setUint32(40, frames * 2, true);
  for (let i = 0; i < frames; i++) {
    let sum = 0;
    for (const data of channels) sum += data[i];
    const sample = Math.max(-1, Math.min(1, sum / channels.length));
    out.setInt16(44 + i * 2, sample < 0 ? sample * 0x8000 : sample * 0x7fff, true);
  }
  return new Blob([out], { type: "audio/wav" });
}

export function audioPicker() {
  const player = h("audio", { controls: true, class: "preview", hidden: true, "aria-label": "Input audio" });
  const status = h("span", { class: "muted", role: "status" });
  const picker = { blob: null, name: "", url: "" };
  const set = (blob, name) => {
    if (picker.url) URL.revokeObjectURL(picker.url);
    Object.assign(picker, { blob, name, url: URL.createObjectURL(blob) });
    player.src = picker.url;
    player.hidden = false;
  };
  const { zone, input } = dropZone("audio", "audio/*", (file) => set(file, file.name || "audio.wav"));
  let recorder = null;
  const record = h("button", { type: "button", class: "record", "aria-pressed": "false" }, "● Record");
  record.addEventListener("click", async () => {
    if (recorder) return recorder.stop();
    let stream;
    try {
      stream = await navigator.mediaDevices.getUserMedia({ audio: true });
    } catch (err) {
      status.textContent = `No microphone: ${err.message}`;
      return;
    }
    const chunks = [];
    recorder = new MediaRecorder(stream);
    recorder.ondataavailable = (e) => chunks.push(e.data);
    recorder.onstop = async () => {
      stream.getTracks().forEach((t) => t.stop());
      recorder = null;
      record.textContent = "● Record";
      record.setAttribute("aria-pressed", "false");
      const context = new AudioContext();
      try {
        const decoded = await context.decodeAudioData(await new Blob(chunks).arrayBuffer());
        set(wav(decoded), "recording.wav");
        status.textContent = `Recorded ${decoded.duration.toFixed(1)} s.`;
      } catch (err) {
        status.textContent = `The recording could not be decoded: ${err.message}`;
      } finally {
        context.close();
      }
    };
    recorder.start();
    record.textContent = "■ Stop recording";
    record.setAttribute("aria-pressed", "true");
    status.textContent = "Recording…";
  });
  picker.root = h("div", { class: "picker" }, zone, h("div", { class: "row" }, record, status), player);
  picker.input = input;
  return picker;
}
