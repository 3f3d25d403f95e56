"""The transformers backend on tiny random models: every task's output shape (servers.md §1.5 b) and parameters."""

from __future__ import annotations

import json
import os
import shutil
import threading

import numpy as np
import pytest

pytest.importorskip("transformers")
os.environ.setdefault("INFERD_TORCH_THREADS", "1")

from PIL import Image  # noqa: E402

from inferd.backends import InputError, TextGenerator, get_backend  # noqa: E402
from inferd.catalogue import ModelEntry  # noqa: E402
from inferd.tasks import Audio, get_task  # noqa: E402

IMAGE = Image.new("RGB", (40, 30), (120, 30, 200))
AUDIO = Audio(np.random.default_rng(0).uniform(-0.3, 0.3, 8000).astype(np.float32), 8000)
TABLE = {"Repository": ["Transformers", "Datasets"], "Stars": ["36542", "4512"]}
WORD_BOXES = [["total", [0, 0, 10, 10]], ["amount", [10, 0, 20, 10]], ["42", [20, 0, 30, 10]]]


def load(tiny_models, task, tasks=None, **entry):
    tasks = tasks or (task,)
    model_entry = ModelEntry(f"tiny-{task}", tuple(tasks), "transformers", "path:x", **entry)
    return get_backend("transformers").load(model_entry, str(tiny_models(task)))


def is_labels(result, labels=None):
    assert isinstance(result, list) and result
    for item in result:
        assert set(item) == {"label", "score"}
        assert type(item["score"]) is float and isinstance(item["label"], str)
    assert [d["score"] for d in result] == sorted((d["score"] for d in result), reverse=True)
    if labels is not None:
        assert {d["label"] for d in result} <= set(labels)
    return True


def keys(result, *names):
    return isinstance(result, dict) and set(result) == set(names)


# task -> (two inputs, parameters, check of one result)
CASES = {
    "text-classification": (
        ["I like you", "I love you"],
        {},
        lambda r: is_labels(r, {"NEGATIVE", "POSITIVE", "NEUTRAL"}) and len(r) == 3,
    ),
    "token-classification": (
        ["My name is Sarah Jessica Parker", "call me Jessica"],
        {},
        lambda r: (
            all(keys(e, "entity_group", "score", "word", "start", "end") for e in r)
            and all(type(e["score"]) is float and type(e["start"]) is int for e in r)
            and {e["entity_group"] for e in r} <= {"PER", "ORG", "LOC", "O"}
        ),
    ),
    "question-answering": (
        [{"question": "What is my name?", "context": "My name is Sarah"}] * 2,
        {},
        lambda r: keys(r, "answer", "score", "start", "end") and type(r["score"]) is float,
    ),
    "fill-mask": (
        ["The goal of life is [MASK].", "hello <mask>"],
        {"top_k": 3},
        lambda r: len(r) == 3 and all(keys(d, "sequence", "score", "token", "token_str") for d in r),
    ),
    "zero-shot-classification": (
        ["I love you", "hello world"],
        {"candidate_labels": ["happy", "sad", "tall"]},
        lambda r: is_labels(r, {"happy", "sad", "tall"}) and len(r) == 3,
    ),
    "table-question-answering": (
        [{"table": TABLE, "query": "how many stars"}] * 2,
        {},
        lambda r: (
            keys(r, "answer", "coordinates", "cells", "aggregator")
            and all(isinstance(c, list) and len(c) == 2 for c in r["coordinates"])
            and r["aggregator"] in {"NONE", "SUM", "AVERAGE", "COUNT"}
        ),
    ),
    "summarization": (["The tower is tall", "hello world"], {}, lambda r: keys(r, "summary_text")),
    "translation": (["hello world", "hello"], {}, lambda r: keys(r, "translation_text")),
    "feature-extraction": (
        ["hello world", "hello"],
        {},
        lambda r: (
            isinstance(r, np.ndarray) and r.dtype == np.float32 and r.shape[0] == 1 and r.shape[2] == 32
        ),
    ),
    "sentence-similarity": (
        [{"source_sentence": "hello world", "sentences": ["hello", "the tower", "paris"]}] * 2,
        {},
        lambda r: len(r) == 3 and all(type(s) is float and -1.0001 <= s <= 1.0001 for s in r),
    ),
    "image-classification": (
        [IMAGE, IMAGE],
        {"top_k": 2},
        lambda r: is_labels(r, {"tabby cat", "golden retriever", "airliner"}) and len(r) == 2,
    ),
    "object-detection": (
        [IMAGE, IMAGE],
        {"threshold": 0.0},
        lambda r: (
            r
            and all(keys(d, "label", "score", "box") for d in r)
            and all(set(d["box"]) == {"xmin", "ymin", "xmax", "ymax"} for d in r)
            and all(type(v) is int for d in r for v in d["box"].values())
        ),
    ),
    "image-segmentation": (
        [IMAGE, IMAGE],
        {},
        lambda r: (
            r
            and all(keys(d, "label", "score", "mask") for d in r)
            and all(d["mask"].mode == "L" and d["mask"].size == IMAGE.size for d in r)
        ),
    ),
    "image-to-text": ([IMAGE, IMAGE], {"max_new_tokens": 4}, lambda r: keys(r, "generated_text")),
    "image-to-image": ([IMAGE, IMAGE], {}, lambda r: isinstance(r, Image.Image) and r.size == (80, 60)),
    "zero-shot-image-classification": (
        [IMAGE, IMAGE],
        {"candidate_labels": ["cat", "dog"]},
        lambda r: is_labels(r, {"cat", "dog"}) and len(r) == 2,
    ),
    "visual-question-answering": (
        [{"image": IMAGE, "question": "who is in the picture?"}] * 2,
        {"top_k": 2},
        lambda r: len(r) == 2 and all(keys(d, "answer", "score") for d in r),
    ),
    "document-question-answering": (
        [{"image": IMAGE, "question": "what is the total amount?"}] * 2,
        {"word_boxes": WORD_BOXES},
        lambda r: isinstance(r, list) and all(keys(d, "answer", "score", "start", "end") for d in r),
    ),
    "automatic-speech-recognition": (
        [AUDIO, AUDIO],
        {},
        lambda r: keys(r, "text") and isinstance(r["text"], str),
    ),
    "audio-classification": ([AUDIO, AUDIO], {}, lambda r: is_labels(r, {"speech", "music", "noise"})),
    "text-to-speech": (
        ["hello world", "hi"],
        {},
        lambda r: isinstance(r, Audio) and r.array.dtype == np.float32 and r.array.ndim == 1 and r.array.size,
    ),
    "text-generation": (["Hello world", "Hi"], {"max_new_tokens": 3}, lambda r: keys(r, "generated_text")),
    "conversational": (
        [{"text": "Hi!", "past_user_inputs": ["hello"], "generated_responses": ["hey"]}] * 2,
        {"max_length": 3},
        lambda r: (
            keys(r, "generated_text", "conversation", "warnings")
            and r["conversation"]["past_user_inputs"] == ["hello", "Hi!"]
            and r["conversation"]["generated_responses"][-1] == r["generated_text"]
        ),
    ),
}


@pytest.mark.parametrize("task", sorted(CASES))
def test_every_task_answers_a_batch_in_wire_shape(tiny_models, task):
    inputs, params, check = CASES[task]
    get_task(task).validate_parameters(params)  # the cases only use declared parameters
    model = load(tiny_models, task)
    assert task in model.tasks
    results = model.predict(task, inputs, params)
    assert len(results) == len(inputs)
    for result in results:
        assert check(result), result
    if task not in ("image-segmentation", "image-to-image", "text-to-speech", "feature-extraction"):
        json.dumps(results)  # plain Python data only, no numpy scalars
    assert model.memory_bytes() > 0


def test_super_resolution_batches_mixed_sizes_and_crops_the_padding(tiny_models):
    model = load(tiny_models, "image-to-image")
    small = Image.new("RGB", (16, 16), (0, 200, 0))
    out = model.predict("image-to-image", [IMAGE, small, IMAGE], {})
    assert [im.size for im in out] == [(80, 60), (32, 32), (80, 60)]  # 2x, Swin2SR's window padding cropped
    [resized] = model.predict("image-to-image", [small], {"target_size": {"width": 20, "height": 10}})
    assert resized.size == (20, 10)
    with pytest.raises(InputError, match="prompt"):
        model.predict("image-to-image", [small], {"prompt": "a cat"})  # a diffusion parameter


def test_parameters_take_effect(tiny_models):
    clf = load(tiny_models, "text-classification")
    assert len(clf.predict("text-classification", ["I like you"], {"top_k": 1})[0]) == 1
    raw = clf.predict("text-classification", ["I like you"], {"function_to_apply": "none"})[0]
    assert sum(d["score"] for d in raw) != pytest.approx(1.0)

    ner = load(tiny_models, "token-classification")
    tokens = ner.predict("token-classification", ["Sarah Parker"], {"aggregation_strategy": "none"})[0]
    assert tokens and all("entity" in t and "index" in t for t in tokens)
    kept = ner.predict(
        "token-classification", ["Sarah Parker"], {"ignore_labels": ["O", "PER", "ORG", "LOC"]}
    )
    assert kept == [[]]

    qa = load(tiny_models, "question-answering")
    two = qa.predict(
        "question-answering", [{"question": "name?", "context": "My name is Sarah"}], {"top_k": 2}
    )
    assert isinstance(two[0], list) and len(two[0]) == 2

    fill = load(tiny_models, "fill-mask")
    only = fill.predict("fill-mask", ["hello [MASK]"], {"targets": ["world", "paris"]})[0]
    assert {d["token_str"] for d in only} == {"world", "paris"}

    zs = load(tiny_models, "zero-shot-classification")
    multi = zs.predict(
        "zero-shot-classification", ["hi"], {"candidate_labels": ["a", "b"], "multi_label": True}
    )
    assert sum(d["score"] for d in multi[0]) != pytest.approx(1.0)
    joined = zs.predict("zero-shot-classification", ["hi"], {"candidate_labels": "a, b"})  # v0.21 clients
    assert {d["label"] for d in joined[0]} == {"a", "b"}

    asr = load(tiny_models, "automatic-speech-recognition")
    timed = asr.predict("automatic-speech-recognition", [AUDIO], {"return_timestamps": True})[0]
    assert set(timed) == {"text", "chunks"}
    assert all(len(c["timestamp"]) == 2 and isinstance(c["text"], str) for c in timed["chunks"])

    det = load(tiny_models, "object-detection")
    assert det.predict("object-detection", [IMAGE], {"threshold": 1.0}) == [[]]


def test_text_runners_price_their_inputs_for_the_token_budget(tiny_models):
    clf = load(tiny_models, "text-classification")
    limit = clf.runners["text-classification"].max_input_tokens
    assert 0 < limit <= 1 << 20 and clf.max_input_tokens == 0  # priced per runner, through input_tokens
    assert clf.input_tokens("text-classification", "x" * 40) == 12  # 40 ASCII chars / 4 + 2 special tokens
    assert clf.input_tokens("text-classification", "x" * 100_000) == limit  # cut where the model cuts


@pytest.mark.parametrize("task", ["text-classification", "token-classification"])
def test_bert_classifiers_run_on_onnxruntime_and_agree_with_torch(tiny_models, task):
    pytest.importorskip("onnxruntime", reason="the models-text extra is not installed")
    ort = load(tiny_models, task)  # runtime "auto": ONNX Runtime for a plain BERT classifier
    torch_only = load(tiny_models, task, options={"runtime": "torch"})
    assert ort.runners[task].ort is not None and torch_only.runners[task].ort is None
    assert ort.memory_bytes() > torch_only.memory_bytes()  # the session's weights are counted
    texts = ["I like you", "Paris is in France and Angela lives in Berlin", "no"]  # padded together
    got, want = ort.predict(task, texts, {}), torch_only.predict(task, texts, {})
    for g, w in zip(got, want, strict=True):
        assert [x.get("label", x.get("entity_group")) for x in g] == [
            x.get("label", x.get("entity_group")) for x in w
        ]
        assert np.allclose([x["score"] for x in g], [x["score"] for x in w], atol=1e-4)


def test_runtime_option_is_checked(tiny_models):
    with pytest.raises(ValueError, match="unknown runtime"):
        load(tiny_models, "text-classification", options={"runtime": "tensorrt"})
    with pytest.raises(ValueError, match="not possible.*BertForSequenceClassification"):
        load(tiny_models, "fill-mask", tasks=("text-classification",), options={"runtime": "onnxruntime"})


def test_feature_extraction_token_level_and_sentence_transformers_pooled(tiny_models):
    plain = load(tiny_models, "feature-extraction")
    short, long = plain.predict("feature-extraction", ["hello", "hello world paris"], {})
    assert short.shape[1] < long.shape[1]  # each text keeps its own length, padding cut off
    unit = plain.predict("feature-extraction", ["hello"], {"normalize": True, "dimensions": 8})[0]
    assert unit.shape == (1, short.shape[1], 8) and np.allclose(np.linalg.norm(unit, axis=-1), 1, atol=1e-5)

    st = load(tiny_models, "sentence-similarity", tasks=("feature-extraction", "sentence-similarity"))
    vec = st.predict("feature-extraction", ["hello world"], {})[0]
    assert vec.shape == (32,) and np.linalg.norm(vec) == pytest.approx(1, abs=1e-5)
    prompted = st.predict("feature-extraction", ["hello world"], {"prompt_name": "query"})[0]
    assert not np.allclose(vec, prompted)
    with pytest.raises(InputError, match="prompt_name"):
        st.predict("feature-extraction", ["x"], {"prompt_name": "nope"})
    same = st.predict("sentence-similarity", [{"source_sentence": "hello", "sentences": ["hello"]}], {})
    assert same[0][0] == pytest.approx(1.0, abs=1e-5)


def test_unhonoured_parameters_and_bad_inputs_are_input_errors(tiny_models):
    tr = load(tiny_models, "translation")
    with pytest.raises(InputError, match="src_lang"):
        tr.predict("translation", ["hello"], {"src_lang": "en_XX", "tgt_lang": "fr_XX"})
    doc = load(tiny_models, "document-question-answering")
    with pytest.raises(InputError, match="word_boxes"):
        doc.predict("document-question-answering", [{"image": IMAGE, "question": "total?"}], {})
    with pytest.raises(InputError, match="lang"):
        doc.predict("document-question-answering", [{"image": IMAGE, "question": "q"}], {"lang": "en"})
    with pytest.raises(InputError, match="mask token"):
        load(tiny_models, "fill-mask").predict("fill-mask", ["no mask here"], {})
    with pytest.raises(InputError, match="candidate_labels"):
        load(tiny_models, "zero-shot-classification").predict("zero-shot-classification", ["x"], {})
    with pytest.raises(InputError, match="speaker"):
        load(tiny_models, "text-to-speech").predict("text-to-speech", ["hi"], {"speaker": "7"})


def test_generator_details_stop_seed_and_stream(tiny_models):
    gen = load(tiny_models, "text-generation", tasks=("text-generation", "chat-completion"))
    assert isinstance(gen, TextGenerator)
    out = gen.generate("Hello world", {"max_new_tokens": 6})
    assert out.finish_reason == "length" and len(out.tokens) == 6 and out.prompt_tokens > 0
    assert out.text == "".join(t.text for t in out.tokens)
    assert all(isinstance(t.id, int) and t.logprob is not None and t.logprob <= 0 for t in out.tokens)

    stop = out.text[2:5]
    stopped = gen.generate("Hello world", {"max_new_tokens": 6, "stop": [stop]})
    assert stopped.finish_reason == "stop_sequence" and stop in stopped.text and len(stopped.tokens) < 6

    sampled = {"max_new_tokens": 5, "do_sample": True, "temperature": 1.5, "seed": 7}
    a, b = gen.generate("Hello", sampled), gen.generate("Hello", sampled)
    assert a.text == b.text and a.seed == 7

    steps = list(gen.stream("Hello world", {"max_new_tokens": 4}))
    assert len(steps) == 4 and [s.finish_reason for s in steps] == [None, None, None, "length"]
    assert "".join(s.token.text for s in steps) == gen.generate("Hello world", {"max_new_tokens": 4}).text

    early = gen.stream("Hello world", {"max_new_tokens": 200})
    next(early)
    early.close()  # the generating thread stops at the next token
    assert not [t for t in threading.enumerate() if t.name.startswith("generate-")]

    with pytest.raises(InputError, match="model_kwargs"):
        gen.generate("x", {"best_of": 2})
    with pytest.raises(InputError, match="max_new_tokens"):
        gen.generate("x", {"max_new_tokens": 4000})
    prompt = gen.chat_prompt([{"role": "user", "content": [{"type": "text", "text": "hi"}]}])
    assert prompt.endswith("<|im_start|>assistant\n") and "hi" in prompt
    assert gen.count_tokens("hello world") > 0


def test_pickled_weights_are_refused(tiny_models, tmp_path):
    folder = tmp_path / "pickled"
    shutil.copytree(tiny_models("text-classification"), folder)
    (folder / "model.safetensors").rename(folder / "pytorch_model.bin")
    entry = ModelEntry("pickled", ("text-classification",), "transformers", "path:x")
    with pytest.raises(RuntimeError, match=r"safetensors.*pytorch_model\.bin"):
        get_backend("transformers").load(entry, str(folder))


def test_remote_code_needs_the_catalogue_to_allow_it(tiny_models, tmp_path):
    folder = tmp_path / "remote"
    shutil.copytree(tiny_models("text-classification"), folder)
    config = json.loads((folder / "config.json").read_text())
    config["auto_map"] = {"AutoModelForSequenceClassification": "modeling_x.Model"}
    (folder / "config.json").write_text(json.dumps(config))
    (folder / "modeling_x.py").write_text(
        "from transformers import BertForSequenceClassification\n\n\n"
        "class Model(BertForSequenceClassification):\n    pass\n"
    )
    entry = ModelEntry("remote", ("text-classification",), "transformers", "path:x")
    with pytest.raises(RuntimeError, match="trust_remote_code"):
        get_backend("transformers").load(entry, str(folder))
    allowed = ModelEntry("remote", ("text-classification",), "transformers", "path:x", trust_remote_code=True)
    model = get_backend("transformers").load(allowed, str(folder))
    assert type(model.runners["text-classification"].pipe.model).__name__ == "Model"
