"""Build an ONNX graph of a BERT encoder straight from its safetensors weights, in memory.

No export step and no torch: the weights that run are the bytes whose sha256 the server just checked. The
graph is the textbook one (HF `BertModel`, absolute positions, post-LayerNorm, erf GELU); ONNX Runtime's
optimiser fuses parts of it (LayerNorm, GELU, MatMul+scale) at session creation. ORT's contrib Attention and
SkipLayerNormalization ops were tried: no measurable gain on this CPU (1 thread, CPU time: 7.9 vs 8.2 ms for
one sentence, 46.9 vs 49.5 ms at 130 tokens), so the graph keeps standard ops only.
Inputs `input_ids` and `attention_mask` (int64, batch x tokens); output the last hidden state, or a classifier
head's `logits` (`head`). Token types are all zero, as sentence-transformers sends. `BertSession` is the graph
in a ready ONNX Runtime session, shared by the MiniLM embedder and the transformers backend's BERT classifiers.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from typing import Any

import numpy as np

OPSET = 17  # LayerNormalization


def bert_graph(
    weights: Mapping[str, np.ndarray], config: Mapping[str, Any], head: str = ""
) -> tuple[bytes, dict[str, np.ndarray]]:
    """The serialized graph and its large weights, kept out of the protobuf: hand them to ONNX Runtime with
    `SessionOptions.add_external_initializers`, which uses the arrays without another copy (the weights then
    exist once in numpy and once packed by ORT, instead of also in the protobuf and ORT's own copy).

    `head`: "" outputs the last hidden state; "sequence" (BertForSequenceClassification: pooler + classifier)
    and "token" (BertForTokenClassification: classifier per token) output `logits` instead. The heads run in
    the graph because numpy's multi-threaded BLAS took ~10 ms for the (32 x 384) @ (384 x 384) pooler on 2
    busy cores, where ORT's pool takes microseconds."""
    from onnx import TensorProto, helper, numpy_helper

    hidden = int(config["hidden_size"])
    heads = int(config["num_attention_heads"])
    layers = int(config["num_hidden_layers"])
    eps = float(config.get("layer_norm_eps", 1e-12))
    if config.get("hidden_act", "gelu") != "gelu":
        raise ValueError(f"Unsupported BERT activation {config.get('hidden_act')!r}.")
    if config.get("position_embedding_type", "absolute") != "absolute":
        raise ValueError("Only absolute position embeddings are supported.")
    head_dim = hidden // heads
    prefix = "bert." if "bert.embeddings.word_embeddings.weight" in weights else ""

    nodes: list[Any] = []
    inits: list[Any] = []
    external: dict[str, np.ndarray] = {}
    counter = [0]

    def const(name: str, value: np.ndarray) -> str:
        value = np.ascontiguousarray(value)
        if value.nbytes < 4096:
            inits.append(numpy_helper.from_array(value, name))
            return name
        stub = TensorProto(name=name, data_type=helper.np_dtype_to_tensor_dtype(value.dtype))
        stub.dims.extend(value.shape)
        stub.data_location = TensorProto.EXTERNAL
        for key, text in (("location", "in-memory"), ("offset", "0"), ("length", str(value.nbytes))):
            stub.external_data.add(key=key, value=text)
        inits.append(stub)
        external[name] = value
        return name

    def w(name: str, transpose: bool = False, root: str | None = None) -> str:
        array = weights[(prefix if root is None else root) + name]
        return const(name, array.T if transpose else array)

    def op(kind: str, *inputs: str, **attrs: Any) -> str:
        counter[0] += 1
        out = f"{kind.lower()}_{counter[0]}"
        nodes.append(helper.make_node(kind, list(inputs), [out], **attrs))
        return out

    def layer_norm(x: str, name: str) -> str:
        return op("LayerNormalization", x, w(f"{name}.weight"), w(f"{name}.bias"), axis=-1, epsilon=eps)

    def dense(x: str, name: str, root: str | None = None) -> str:
        weight, bias = w(f"{name}.weight", True, root), w(f"{name}.bias", root=root)
        return op("Add", op("MatMul", x, weight), bias)

    # Embeddings: word + position[:tokens] + token type 0.
    zero, one = const("zero", np.array([0], np.int64)), const("one", np.array([1], np.int64))
    two = const("two", np.array([2], np.int64))
    tokens = op("Slice", op("Shape", "input_ids"), one, two)
    positions = op("Slice", w("embeddings.position_embeddings.weight"), zero, tokens, zero)
    token_type = const("token_type_0", weights[prefix + "embeddings.token_type_embeddings.weight"][0])
    x = op("Add", op("Gather", w("embeddings.word_embeddings.weight"), "input_ids"), positions)
    x = layer_norm(op("Add", x, token_type), "embeddings.LayerNorm")

    # Additive mask (batch, 1, 1, tokens): 0 where attended, -1e4 on padding, as BERT does.
    mask = op("Cast", "attention_mask", to=TensorProto.FLOAT)
    mask = op(
        "Mul",
        op("Sub", const("f_one", np.array(1.0, np.float32)), mask),
        const("neg", np.array(-1e4, np.float32)),
    )
    mask = op("Unsqueeze", mask, const("axes_1_2", np.array([1, 2], np.int64)))

    split_shape = const("split_shape", np.array([0, 0, heads, head_dim], np.int64))
    merge_shape = const("merge_shape", np.array([0, 0, hidden], np.int64))
    scale = const("scale", np.array(1.0 / math.sqrt(head_dim), np.float32))
    half, sqrt2 = (
        const("half", np.array(0.5, np.float32)),
        const("sqrt2", np.array(math.sqrt(2.0), np.float32)),
    )
    f_one = "f_one"
    for i in range(layers):
        p = f"encoder.layer.{i}"

        def heads_of(name: str, perm: list[int], src: str, p: str = p) -> str:
            projected = dense(src, f"{p}.attention.self.{name}")
            return op("Transpose", op("Reshape", projected, split_shape), perm=perm)

        q = heads_of("query", [0, 2, 1, 3], x)
        k = heads_of("key", [0, 2, 3, 1], x)
        v = heads_of("value", [0, 2, 1, 3], x)
        scores = op("Add", op("Mul", op("MatMul", q, k), scale), mask)
        context = op("MatMul", op("Softmax", scores, axis=-1), v)
        context = op("Reshape", op("Transpose", context, perm=[0, 2, 1, 3]), merge_shape)
        attended = dense(context, f"{p}.attention.output.dense")
        x = layer_norm(op("Add", attended, x), f"{p}.attention.output.LayerNorm")
        h = dense(x, f"{p}.intermediate.dense")
        h = op("Mul", op("Mul", h, half), op("Add", op("Erf", op("Div", h, sqrt2)), f_one))  # exact GELU
        h = dense(h, f"{p}.output.dense")
        x = layer_norm(op("Add", h, x), f"{p}.output.LayerNorm")

    shape: list[str | int]
    if head == "sequence":  # BertPooler (the [CLS] vector, dense, tanh), then the classifier
        cls = op("Squeeze", op("Gather", x, zero, axis=1), one)  # [CLS], position 0: (batch, hidden)
        x = dense(op("Tanh", dense(cls, "pooler.dense")), "classifier", root="")
        shape = ["batch", int(weights["classifier.bias"].shape[0])]
    elif head == "token":
        x = dense(x, "classifier", root="")
        shape = ["batch", "tokens", int(weights["classifier.bias"].shape[0])]
    elif head:
        raise ValueError(f"Unknown BERT head {head!r} (sequence or token).")
    else:
        shape = ["batch", "tokens", hidden]
    output = "logits" if head else "last_hidden_state"
    nodes.append(helper.make_node("Identity", [x], [output]))
    graph = helper.make_graph(
        nodes,
        "bert",
        [
            helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "tokens"]),
            helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", "tokens"]),
        ],
        [helper.make_tensor_value_info(output, TensorProto.FLOAT, shape)],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 8
    return bytes(model.SerializeToString()), external


def default_threads() -> int:
    """ONNX Runtime intra-op threads for one model: up to 4. They do not spin (see BertSession): measured on 2
    cores, 2 non-spinning threads ran 16 texts of ~128 tokens in 440 ms against 820 ms with 1, for the same CPU,
    and cost ~3 ms more CPU on one short text; spinning ones took the event loop's core."""
    return min(os.cpu_count() or 1, 4)


class BertSession:
    """A BERT encoder's weights (`weights`, `config` as in config.json) run by ONNX Runtime on the CPU, ending
    in its last hidden state or, with a `head` (see `bert_graph`), in that head's logits."""

    def __init__(
        self, weights: Mapping[str, np.ndarray], config: Mapping[str, Any], threads: int = 0, head: str = ""
    ) -> None:
        import onnxruntime as ort

        graph, external = bert_graph(weights, config, head)
        self.nbytes = 2 * sum(a.nbytes for a in external.values())  # numpy weights + ORT's packed copies
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or default_threads()
        options.inter_op_num_threads = 1
        # Idle intra-op threads spin by default; on a small machine they take the core the event loop needs
        # (measured: 2 spinning threads burned 18 ms of CPU for a 16 ms request at one client).
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self._values = {name: ort.OrtValue.ortvalue_from_numpy(a) for name, a in external.items()}
        self._arrays = external  # ORT reads these buffers for the session's lifetime: keep them alive
        options.add_external_initializers(list(self._values), list(self._values.values()))
        self.session = ort.InferenceSession(graph, options, providers=["CPUExecutionProvider"])

    def hidden(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        """The last hidden state, float32 (batch, tokens, hidden), of a session built without a head."""
        return self._run(input_ids, attention_mask)

    def logits(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        """The head's logits, float32, of a session built with a `head`."""
        return self._run(input_ids, attention_mask)

    def _run(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        feeds = {"input_ids": input_ids.astype(np.int64), "attention_mask": attention_mask.astype(np.int64)}
        (out,) = self.session.run(None, feeds)
        return np.asarray(out)
