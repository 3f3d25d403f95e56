"""Sentence-transformers models: embeddings, sentence similarity, and an embedding approximation of zero-shot.

Two runtimes, chosen by the entry's `options["runtime"]`:
  "onnxruntime" (default) for BERT encoders pooled by mean or [CLS] (all-MiniLM-L6-v2, bge): the ONNX graph is built in
      memory from the verified `model.safetensors` (no export step, no torch), tokenized with `tokenizers`.
      It matches sentence-transformers' own encode() within 1e-6, loads in ~1 s instead of 7-11 s, holds
      285 MB RSS instead of 510 MB, and costs less CPU (1 thread: 7 vs 16 ms for one sentence, 245 vs 301 ms
      for 64 short ones).
  "torch" for anything else: sentence-transformers itself (its own pipeline decides normalisation).
A batch is sorted by length and cut into forward passes where the padding would cost more than another pass
(`length_chunks`).

Zero-shot classification is an approximation, named so in `approximations`: the text and one hypothesis per
label ("This text is about {}.") are embedded, and the scores come from their cosine similarity. Single-label:
softmax of cosine x 20 (20 is the default scale of sentence-transformers' in-batch contrastive losses, the
kind of objective all-MiniLM-L6-v2 was trained with), so the scores sum to one. multi_label: each label's cosine clipped at 0, on its own. Neither is an entailment
probability.

Texts longer than the model takes (256 tokens for MiniLM) are cut, as sentence-transformers does, unless
feature-extraction is sent `truncate: false` (TEI's switch), which refuses them instead.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ._bert_onnx import default_threads
from .base import Backend, InputError, Model
from .weights import check_finite_weights

if TYPE_CHECKING:
    from ..catalogue import ModelEntry

ZERO_SHOT_SCALE = 20.0  # softmax temperature 0.05 over cosines
DEFAULT_TEMPLATE = "This text is about {}."
# Texts per forward pass at most, sorted by length so padding stays small. Measured on 64 texts of 5-60 random
# words (1 thread, CPU time): 16 -> 0.78 s, 32 -> 0.91 s, 64 -> 1.31 s; 32 texts of 128 tokens cost 2.1x 16 of them.
_CHUNK = 16
# What one more forward pass costs, in padded tokens: on 2 threads a call costs ~2.8 ms of CPU besides ~0.11 ms
# per padded token (`python bench/encoder_forward.py --cost`), so splitting a chunk pays when it saves more padding
# than that. `--padding` checks it on mixed batches: a third of it does as well, 3x more costs up to 12 % more CPU.
_CALL_TOKENS = 24


class SentenceTransformersBackend(Backend):
    name = "sentence-transformers"

    def load(self, entry: ModelEntry, path: str) -> Model:
        runtime = str(entry.options.get("runtime", "onnxruntime"))
        threads = int(entry.options.get("threads", 0)) or default_threads()
        folder = Path(path)
        encoder: _Encoder
        if runtime == "onnxruntime":
            encoder = _OrtBertEncoder(folder, threads)
        elif runtime == "torch":
            encoder = _TorchEncoder(folder, threads)
        else:
            raise ValueError(f"Model {entry.model_id}: unknown runtime {runtime!r} (onnxruntime or torch).")
        return SentenceEmbedder(entry, encoder)


class _Encoder:
    """Texts -> pooled, not normalised vectors; `too_long` lists the inputs that were cut."""

    max_tokens = 512
    dim = 0
    prompts: Mapping[str, str] = {}
    nbytes = 0

    def encode(self, texts: Sequence[str], direction: str) -> tuple[np.ndarray, list[int]]:
        raise NotImplementedError


class SentenceEmbedder(Model):
    def __init__(self, entry: ModelEntry, encoder: _Encoder) -> None:
        self.entry = entry
        self.encoder = encoder
        self.max_input_tokens = encoder.max_tokens
        self.tasks = tuple(entry.tasks)
        self.approximations = dict(entry.approximations)

    def memory_bytes(self) -> int:
        return self.encoder.nbytes

    def predict(self, task: str, inputs: Sequence[Any], parameters: Mapping[str, Any]) -> list[Any]:
        if task == "feature-extraction":
            return self._features(inputs, parameters)
        if task == "sentence-similarity":
            return self._similarity(inputs)
        if task == "zero-shot-classification":
            return self._zero_shot(inputs, parameters)
        raise InputError(f"Model {self.entry.model_id} does not serve task '{task}'.")

    def _embed(
        self, texts: Sequence[str], *, truncate: bool | None = None, direction: str = "right"
    ) -> np.ndarray:
        """L2-normalised vectors. `truncate=False` refuses texts longer than the model takes."""
        vectors, cut = self.encoder.encode(texts, direction)
        if cut and truncate is False:
            raise InputError(
                f"Input {cut[0]} is longer than the {self.encoder.max_tokens} tokens this model takes; "
                "send `truncate: true` to cut it."
            )
        return vectors

    def _features(self, inputs: Sequence[Any], parameters: Mapping[str, Any]) -> list[Any]:
        prompt = ""
        if parameters.get("prompt_name") is not None:
            name = parameters["prompt_name"]
            if name not in self.encoder.prompts:
                known = sorted(self.encoder.prompts) or "none"
                raise InputError(f"Unknown prompt_name {name!r} for this model (its prompts: {known}).")
            prompt = self.encoder.prompts[name]
        dims = parameters.get("dimensions")
        if dims is not None and dims > self.encoder.dim:
            raise InputError(f"`dimensions` is {dims}, but this model's vectors have {self.encoder.dim}.")
        flat: list[str] = []
        for item in inputs:  # one input is a str or a list of str
            texts = [item] if isinstance(item, str) else list(item)
            if not all(isinstance(t, str) for t in texts):
                raise InputError("feature-extraction takes a string or a list of strings.")
            flat.extend(prompt + t for t in texts)
        direction = str(parameters.get("truncation_direction") or "right").lower()
        vectors = self._embed(flat, truncate=parameters.get("truncate"), direction=direction)
        if dims is not None:
            vectors = vectors[:, :dims]
        if parameters.get("normalize", True):
            vectors = _unit(vectors)
        vectors = vectors.astype(np.float32)
        out: list[Any] = []
        i = 0
        for item in inputs:
            if isinstance(item, str):
                out.append(vectors[i])
                i += 1
            else:
                out.append(vectors[i : i + len(item)])
                i += len(item)
        return out

    def _similarity(self, inputs: Sequence[Any]) -> list[Any]:
        flat: list[str] = []
        for item in inputs:
            source, sentences = item.get("source_sentence"), item.get("sentences")
            if not isinstance(source, str) or not isinstance(sentences, list) or not sentences:
                raise InputError("sentence-similarity takes {source_sentence: str, sentences: [str, ...]}.")
            flat.append(source)
            flat.extend(str(s) for s in sentences)
        vectors = _unit(self._embed(flat))
        out, i = [], 0
        for item in inputs:
            n = len(item["sentences"])
            out.append([float(x) for x in vectors[i + 1 : i + 1 + n] @ vectors[i]])
            i += 1 + n
        return out

    def _zero_shot(self, inputs: Sequence[Any], parameters: Mapping[str, Any]) -> list[Any]:
        labels = parameters.get("candidate_labels")
        if isinstance(labels, str):  # huggingface_hub v0.21 sends one comma-joined string
            labels = [part.strip() for part in labels.split(",")]
        labels = [str(label) for label in labels or () if str(label).strip()]
        if not labels:
            raise InputError("zero-shot-classification needs `candidate_labels` (a list of labels).")
        template = parameters.get("hypothesis_template") or DEFAULT_TEMPLATE
        if "{}" not in template:
            raise InputError(f"`hypothesis_template` must contain '{{}}' where the label goes: {template!r}.")
        hypotheses = [template.replace("{}", label) for label in labels]
        texts = [str(t) for t in inputs]
        vectors = _unit(self._embed([*hypotheses, *texts]))
        cosines = vectors[len(labels) :] @ vectors[: len(labels)].T  # (texts, labels)
        out = []
        for row in cosines:
            if parameters.get("multi_label"):
                scores = np.clip(row, 0.0, 1.0)
            else:
                e = np.exp(ZERO_SHOT_SCALE * (row - row.max()))
                scores = e / e.sum()
            order = np.argsort(-scores, kind="stable")
            out.append([{"label": labels[j], "score": float(scores[j])} for j in order])
        return out


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.clip(np.linalg.norm(v, axis=-1, keepdims=True), 1e-12, None)


def _st_config(folder: Path) -> tuple[int, dict[str, str]]:
    """max_seq_length and named prompts from a sentence-transformers folder."""
    max_len = 512
    bert_cfg = folder / "sentence_bert_config.json"
    if bert_cfg.is_file():
        max_len = int(json.loads(bert_cfg.read_text()).get("max_seq_length", max_len))
    st_cfg = folder / "config_sentence_transformers.json"
    prompts = json.loads(st_cfg.read_text()).get("prompts", {}) if st_cfg.is_file() else {}
    return max_len, dict(prompts)


def _pooling(folder: Path) -> str:
    """ "mean" or "cls" from the sentence-transformers Pooling module (mean when the folder has none, as
    sentence-transformers assumes); other modes (max, last token, weighted) need runtime 'torch'."""
    pooling_file = folder / "1_Pooling" / "config.json"
    if not pooling_file.is_file():
        return "mean"
    modes = {
        k for k, v in json.loads(pooling_file.read_text()).items() if k.startswith("pooling_mode_") and v
    }
    if modes == {"pooling_mode_mean_tokens"}:
        return "mean"
    if modes == {"pooling_mode_cls_token"}:
        return "cls"
    raise ValueError(
        f"{folder}: the onnxruntime runtime pools by mean or [CLS] token only (this model: {sorted(modes)}); "
        "use runtime 'torch'."
    )


class _OrtBertEncoder(_Encoder):
    def __init__(self, folder: Path, threads: int) -> None:
        from safetensors.numpy import load_file
        from tokenizers import Tokenizer

        from ._bert_onnx import BertSession

        config = json.loads((folder / "config.json").read_text())
        self.pooling = _pooling(folder)
        if config.get("model_type") != "bert":
            raise ValueError(
                f"{folder}: the onnxruntime runtime runs BERT encoders only; use runtime 'torch'."
            )
        self.max_tokens, self.prompts = _st_config(folder)
        self.max_tokens = min(self.max_tokens, int(config.get("max_position_embeddings", 512)))
        self.dim = int(config["hidden_size"])
        weights = load_file(str(folder / "model.safetensors"))
        check_finite_weights(weights.items(), str(folder))
        self.bert = BertSession(weights, config, threads)
        self.nbytes = self.bert.nbytes
        self._tokenizers: dict[str, Any] = {}
        for direction in ("right", "left"):
            tok = Tokenizer.from_file(str(folder / "tokenizer.json"))
            tok.enable_truncation(self.max_tokens, direction=direction)
            tok.no_padding()
            self._tokenizers[direction] = tok

    def encode(self, texts: Sequence[str], direction: str) -> tuple[np.ndarray, list[int]]:
        encodings = self._tokenizers[direction].encode_batch(list(texts))
        cut = [i for i, e in enumerate(encodings) if e.overflowing]
        out = np.zeros((len(texts), self.dim), np.float32)
        order = sorted(range(len(texts)), key=lambda i: len(encodings[i].ids))
        for start, end in length_chunks([len(encodings[i].ids) for i in order]):
            idx = order[start:end]
            width = len(encodings[idx[-1]].ids)
            ids = np.zeros((len(idx), width), np.int64)
            mask = np.zeros((len(idx), width), np.int64)
            for row, i in enumerate(idx):
                n = len(encodings[i].ids)
                ids[row, :n] = encodings[i].ids
                mask[row, :n] = 1
            hidden = self.bert.hidden(ids, mask)
            if self.pooling == "cls":
                out[idx] = hidden[:, 0]
            else:
                m = mask[..., None].astype(np.float32)
                out[idx] = (hidden * m).sum(axis=1) / np.clip(m.sum(axis=1), 1e-9, None)
        return out, cut


def length_chunks(
    lengths: Sequence[int], most: int = _CHUNK, call: int = _CALL_TOKENS
) -> list[tuple[int, int]]:
    """Split texts sorted by token count (`lengths`, ascending) into runs of at most `most`, each padded to its
    last (longest) text, so that padded tokens plus `call` per run are fewest: an exact dynamic programme over
    the split points (len(lengths) x most steps). A batch of one 128-token text and 15 short ones runs as two
    passes instead of 16 rows of 128 tokens."""
    n = len(lengths)
    cost = [0] * (n + 1)  # cost[i]: the cheapest way to run the first i texts
    cut_at = [0] * (n + 1)
    for i in range(1, n + 1):
        width = lengths[i - 1]
        best, best_j = -1, 0
        for j in range(max(0, i - most), i):
            c = cost[j] + call + (i - j) * width
            if best < 0 or c < best:
                best, best_j = c, j
        cost[i], cut_at[i] = best, best_j
    runs = []
    i = n
    while i > 0:
        runs.append((cut_at[i], i))
        i = cut_at[i]
    return runs[::-1]


class _TorchEncoder(_Encoder):
    def __init__(self, folder: Path, threads: int) -> None:
        import torch
        from sentence_transformers import SentenceTransformer

        torch.set_num_threads(threads)
        self.model = SentenceTransformer(str(folder), device="cpu")
        check_finite_weights(self.model.named_parameters(), str(folder))
        self.max_tokens = int(self.model.max_seq_length or 512)
        get_dim = getattr(self.model, "get_embedding_dimension", None)  # renamed in sentence-transformers 5.x
        get_dim = get_dim or self.model.get_sentence_embedding_dimension
        self.dim = int(get_dim() or 0)
        self.prompts = dict(self.model.prompts or {})
        self.nbytes = sum(p.numel() * p.element_size() for p in self.model.parameters())
        self._lock = threading.Lock()  # a torch module is not safe to call from two threads

    def encode(self, texts: Sequence[str], direction: str) -> tuple[np.ndarray, list[int]]:
        if direction != "right":
            raise InputError("This model's runtime (torch) truncates on the right only.")
        tokenizer = self.model.tokenizer
        lengths = [len(tokenizer(t, add_special_tokens=True)["input_ids"]) for t in texts]
        cut = [i for i, n in enumerate(lengths) if n > self.max_tokens]
        with self._lock:
            vectors = self.model.encode(list(texts), batch_size=_CHUNK, convert_to_numpy=True)
        return np.asarray(vectors, np.float32), cut
