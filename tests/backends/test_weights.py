"""A corrupt model.safetensors with no sha256 in the catalogue fails to load instead of answering `[null, ...]`
vectors (issue 10, row 15a). The corruption is what a bad disk or a cut copy does: bytes overwritten inside the
weights, the header intact."""

from __future__ import annotations

import importlib.util
import json
import shutil
import struct

import numpy as np
import pytest

from inferd.backends import get_backend
from inferd.backends.weights import CorruptWeightsError, check_finite_weights
from inferd.catalogue import ModelEntry
from inferd.server.engine import Engine, EngineSettings
from inferd.server.errors import ServerError


def corrupt_copy(folder, dest):
    """A copy of `folder` whose model.safetensors has 4 KB of 0xFF (NaN as float32) in its largest tensor."""
    shutil.copytree(folder, dest)
    weights = dest / "model.safetensors"
    data = bytearray(weights.read_bytes())
    (header_size,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + header_size])
    start, end = max(
        (v["data_offsets"] for k, v in header.items() if k != "__metadata__"), key=lambda o: o[1] - o[0]
    )
    at = 8 + header_size + start + (end - start) // 2
    data[at : at + 4096] = b"\xff" * 4096
    weights.write_bytes(bytes(data))
    return dest


@pytest.fixture(scope="module")
def corrupt_encoder(tiny_models, tmp_path_factory):
    return corrupt_copy(tiny_models("sentence-similarity"), tmp_path_factory.mktemp("corrupt") / "encoder")


def entry(backend: str, folder, **options) -> ModelEntry:
    return ModelEntry("test/corrupt", ("feature-extraction",), backend, f"path:{folder}", options=options)


def test_check_finite_weights_names_the_tensor():
    check_finite_weights([("a", np.ones(3, np.float32)), ("ids", np.arange(3))], "model x")
    with pytest.raises(CorruptWeightsError, match=r"model x: weight b holds NaN or infinity"):
        check_finite_weights([("a", np.ones(3)), ("b", np.array([1.0, np.inf]))], "model x")


@pytest.mark.parametrize("runtime", ["onnxruntime", "torch"])
def test_sentence_transformers_refuses_corrupt_weights(corrupt_encoder, runtime):
    if runtime == "torch" and not importlib.util.find_spec("sentence_transformers"):
        pytest.skip("sentence-transformers not installed: the torch runtime is unavailable")
    with pytest.raises(CorruptWeightsError, match="holds NaN or infinity"):
        get_backend("sentence-transformers").load(
            entry("sentence-transformers", corrupt_encoder, runtime=runtime), str(corrupt_encoder)
        )


def test_transformers_refuses_corrupt_weights(corrupt_encoder):
    with pytest.raises(CorruptWeightsError, match="holds NaN or infinity"):
        get_backend("transformers").load(entry("transformers", corrupt_encoder), str(corrupt_encoder))


async def test_the_server_answers_a_load_error_not_null_vectors(corrupt_encoder, tmp_path):
    model = entry("sentence-transformers", corrupt_encoder)
    engine = Engine(
        {model.model_id: model},
        EngineSettings(allowed_dirs=(corrupt_encoder.parent,), digest_cache=tmp_path / "digests.json"),
    )
    await engine.start()
    try:
        with pytest.raises(ServerError) as caught:
            await engine.predict(model.model_id, "feature-extraction", ["hello"], {}, wait_for_model=True)
        assert caught.value.status_code >= 500
        assert engine.status(model.model_id)["state"] == "Failed"
        assert "NaN or infinity" in engine.status(model.model_id)["error"]
    finally:
        await engine.close()
