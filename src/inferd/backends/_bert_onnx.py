"""Build an ONNX graph of a BERT encoder straight from its safetensors weights, in memory.

No export step and no torch: the weights that run are the bytes whose sha256 the server just checked. The
graph is the textbook one (HF `BertModel`, absolute positions, post-LayerNorm, erf GELU); ONNX Runtime's
optimiser fuses parts of it (GELU with its bias, MatMul+scale) at session creation. The graph ORT's transformer
optimizer would make of it (contrib Attention, SkipLayerNormalization, BiasGelu) is written by `fused=True`; it
cost more CPU on this AMD EPYC (bench/encoder_forward.py: 6-17 % more per text with 2 threads, SkipLayerNormalization
the worse part, Attention alone within 3 %), so the standard ops stay the default and the contrib ops are the
entry option `fused_ops` for CPUs where they win.
Inputs `input_ids` and `attention_mask` (int64, batch x tokens); output the last hidden state. Token types
are all zero, as sentence-transformers sends. `BertSession` is the graph in a ready ONNX Runtime session, shared
by the MiniLM embedder and the transformers backend's BERT classifiers.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from typing import Any

import numpy as np

OPSET = 17  # LayerNormalization


def bert_graph(
    weights: Mapping[str, np.ndarray], config: Mapping[str, Any], fused: bool = False
) -> tuple[bytes, dict[str, np.ndarray]]:
    """The serialized graph and its large weights, kept out of the protobuf: hand them to ONNX Runtime with
    `SessionOptions.add_external_initializers`, which uses the arrays without another copy (the weights then
    exist once in numpy and once packed by ORT, instead of also in the protobuf and ORT's own copy).

    `fused` writes each layer with ONNX Runtime's contrib ops (Attention with Q, K and V in one matrix,
    SkipLayerNormalization, BiasGelu), the graph that `onnxruntime.transformers.optimizer` makes of the plain one,
    without its ~1 s and its copy of the weights at load. It needs the mask padded on the right (the attention
    reads each row's length), which is how the tokenizers pad BERT's inputs. Plain: standard ops only."""
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

    def w(name: str, transpose: bool = False) -> str:
        array = weights[prefix + name]
        return const(name, array.T if transpose else array)

    def op(kind: str, *inputs: str, domain: str = "", **attrs: Any) -> str:
        counter[0] += 1
        out = f"{kind.lower()}_{counter[0]}"
        nodes.append(helper.make_node(kind, list(inputs), [out], domain=domain or None, **attrs))
        return out

    def layer_norm(x: str, name: str) -> str:
        return op("LayerNormalization", x, w(f"{name}.weight"), w(f"{name}.bias"), axis=-1, epsilon=eps)

    def dense(x: str, name: str) -> str:
        return op("Add", op("MatMul", x, w(f"{name}.weight", transpose=True)), w(f"{name}.bias"))

    def ms(kind: str, *inputs: str, **attrs: Any) -> str:
        return op(kind, *inputs, domain="com.microsoft", **attrs)

    def residual_norm(projected: str, skip: str, name: str, norm: str) -> str:
        """LayerNorm(projected @ W + b + skip)."""
        if not fused:
            return layer_norm(op("Add", dense(projected, name), skip), norm)
        matmul = op("MatMul", projected, w(f"{name}.weight", transpose=True))
        gamma, beta, bias = w(f"{norm}.weight"), w(f"{norm}.bias"), w(f"{name}.bias")
        return ms("SkipLayerNormalization", matmul, skip, gamma, beta, bias, epsilon=eps)

    # Embeddings: word + position[:tokens] + token type 0.
    zero, one = const("zero", np.array([0], np.int64)), const("one", np.array([1], np.int64))
    two = const("two", np.array([2], np.int64))
    tokens = op("Slice", op("Shape", "input_ids"), one, two)
    positions = op("Slice", w("embeddings.position_embeddings.weight"), zero, tokens, zero)
    token_type = const("token_type_0", weights[prefix + "embeddings.token_type_embeddings.weight"][0])
    x = op("Add", op("Gather", w("embeddings.word_embeddings.weight"), "input_ids"), positions)
    x = layer_norm(op("Add", x, token_type), "embeddings.LayerNorm")

    if fused:  # each row's length: the Attention op masks the positions after it with -1e4, as BERT does
        mask = op("ReduceSum", op("Cast", "attention_mask", to=TensorProto.INT32), one, keepdims=0)
    else:
        # Additive mask (batch, 1, 1, tokens): 0 where attended, -1e4 on padding, as BERT does. Built in the
        # order torch's export writes it (Unsqueeze, Unsqueeze, Cast, Sub, Mul), which ORT's optimizer matches.
        mask = op("Unsqueeze", "attention_mask", one)
        mask = op("Cast", op("Unsqueeze", mask, two), to=TensorProto.FLOAT)
        mask = op(
            "Mul",
            op("Sub", const("f_one", np.array(1.0, np.float32)), mask),
            const("neg", np.array(-1e4, np.float32)),
        )

        split_shape = const("split_shape", np.array([0, 0, heads, head_dim], np.int64))
        merge_shape = const("merge_shape", np.array([0, 0, hidden], np.int64))
        # Scores divided by sqrt(head_dim), as torch's export writes it: a Mul here would look like the mask's
        # Mul to the optimizer's attention fusion, which takes the first parent of the right type.
        root_dim = const("root_head_dim", np.array(math.sqrt(head_dim), np.float32))
        half = const("half", np.array(0.5, np.float32))
        sqrt2 = const("sqrt2", np.array(math.sqrt(2.0), np.float32))
    for i in range(layers):
        p = f"encoder.layer.{i}"
        attn = f"{p}.attention.self"
        if fused:
            qkv = [f"{attn}.{n}" for n in ("query", "key", "value")]
            qkv_weight = np.concatenate([weights[prefix + n + ".weight"].T for n in qkv], axis=1)
            qkv_bias = np.concatenate([weights[prefix + n + ".bias"] for n in qkv])
            qkv_in = (const(f"{attn}.qkv.weight", qkv_weight), const(f"{attn}.qkv.bias", qkv_bias))
            context = ms("Attention", x, *qkv_in, mask, num_heads=heads)
        else:

            def heads_of(name: str, perm: list[int], src: str, attn: str = attn) -> str:
                projected = dense(src, f"{attn}.{name}")
                return op("Transpose", op("Reshape", projected, split_shape), perm=perm)

            q = heads_of("query", [0, 2, 1, 3], x)
            k = heads_of("key", [0, 2, 3, 1], x)
            v = heads_of("value", [0, 2, 1, 3], x)
            scores = op("Add", op("Div", op("MatMul", q, k), root_dim), mask)
            context = op("MatMul", op("Softmax", scores, axis=-1), v)
            context = op("Reshape", op("Transpose", context, perm=[0, 2, 1, 3]), merge_shape)
        x = residual_norm(context, x, f"{p}.attention.output.dense", f"{p}.attention.output.LayerNorm")
        if fused:
            projected = op("MatMul", x, w(f"{p}.intermediate.dense.weight", transpose=True))
            h = ms("BiasGelu", projected, w(f"{p}.intermediate.dense.bias"))  # exact (erf) GELU
        else:
            h = dense(x, f"{p}.intermediate.dense")
            h = op(
                "Mul", op("Mul", h, half), op("Add", op("Erf", op("Div", h, sqrt2)), "f_one")
            )  # exact GELU
        x = residual_norm(h, x, f"{p}.output.dense", f"{p}.output.LayerNorm")

    nodes.append(helper.make_node("Identity", [x], ["last_hidden_state"]))
    graph = helper.make_graph(
        nodes,
        "bert",
        [
            helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "tokens"]),
            helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", "tokens"]),
        ],
        [helper.make_tensor_value_info("last_hidden_state", TensorProto.FLOAT, ["batch", "tokens", hidden])],
        inits,
    )
    opsets = [helper.make_opsetid("", OPSET), helper.make_opsetid("com.microsoft", 1)]
    model = helper.make_model(graph, opset_imports=opsets if fused else opsets[:1])
    model.ir_version = 8
    return bytes(model.SerializeToString()), external


def default_threads() -> int:
    """ONNX Runtime intra-op threads for one model: up to 4. They do not spin (see BertSession): measured on 2
    cores, 2 non-spinning threads ran 16 texts of ~128 tokens in 440 ms against 820 ms with 1, for the same CPU,
    and cost ~3 ms more CPU on one short text; spinning ones took the event loop's core."""
    return min(os.cpu_count() or 1, 4)


def _session_options(threads: int) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    # Idle intra-op threads spin by default; on a small machine they take the core the event loop needs
    # (measured: 2 spinning threads burned 18 ms of CPU for a 16 ms request at one client).
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return options


class BertSession:
    """A BERT encoder's weights (`weights`, `config` as in config.json) run by ONNX Runtime on the CPU.
    `fuse`: ORT's fused contrib ops (see `bert_graph`), which need the padding on the right; off (the default),
    the graph has standard ops only."""

    def __init__(
        self,
        weights: Mapping[str, np.ndarray],
        config: Mapping[str, Any],
        threads: int = 0,
        fuse: bool = False,
    ) -> None:
        import onnxruntime as ort

        graph, external = bert_graph(weights, config, fused=fuse)
        self.fused = fuse
        self.nbytes = 2 * sum(a.nbytes for a in external.values())  # numpy weights + ORT's packed copies
        options = _session_options(threads or default_threads())
        self._values = {name: ort.OrtValue.ortvalue_from_numpy(a) for name, a in external.items()}
        self._arrays = external  # ORT reads these buffers for the session's lifetime: keep them alive
        options.add_external_initializers(list(self._values), list(self._values.values()))
        self.session = ort.InferenceSession(graph, options, providers=["CPUExecutionProvider"])

    def hidden(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        """The last hidden state, float32 (batch, tokens, hidden)."""
        if self.fused and (attention_mask[:, 1:] > attention_mask[:, :-1]).any():
            raise ValueError("The fused BERT graph needs its inputs padded on the right.")
        feeds = {"input_ids": input_ids.astype(np.int64), "attention_mask": attention_mask.astype(np.int64)}
        (out,) = self.session.run(None, feeds)
        return np.asarray(out)
