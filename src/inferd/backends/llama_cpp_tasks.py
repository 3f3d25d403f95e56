"""Tasks answered by prompting a chat model: prompts and the pure post-processing (no llama.cpp here).

Summarization and question-answering are *approximations* (spec models.md): a small instruct model is prompted,
and for question-answering its free-text answer is located in the context to give `start`/`end`.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from typing import Any

APPROXIMATIONS: Mapping[str, str] = {
    "summarization": "generative summary: the chat model is prompted to summarise (not a trained summariser)",
    "question-answering": (
        "generative QA: the chat model answers, then the answer is located in the context for start/end; "
        "when it is not there verbatim, the best matching context span is returned (score is lowered)"
    ),
}

SUMMARIZE_PROMPT = "Summarize the following text in one or two sentences.\n\n{text}"
# SmolLM2-135M follows this best with its template's default system prompt (tried against a few variants).
QA_PROMPT = "Context: {context}\n\nQuestion: {question}\nAnswer in a few words, copied from the context."

_WORD = re.compile(r"\w+", re.UNICODE)
_NUMERIC_QUESTION = re.compile(r"\b(when|year|date|how (much|many|long|old|far|tall|big))\b", re.IGNORECASE)
# Words that carry no answer: an answer word found in the question (or in this list) does not locate a span.
_STOPWORDS = frozenset(
    "a an the is are was were be been of in on at to for by with and or it its this that these those as from "
    "into than then there their they he she his her we you i me my our your what when where who whom which "
    "why how did does do has have had not no yes".split()
)


def summarize_messages(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": SUMMARIZE_PROMPT.format(text=text.strip())}]


def qa_messages(question: str, context: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": QA_PROMPT.format(context=context.strip(), question=question.strip())}]


def conversation_messages(inputs: Mapping[str, Any]) -> tuple[list[dict[str, str]], list[str]]:
    """Chat messages from the legacy conversational input, and warnings about what did not fit."""
    past = [str(t) for t in inputs.get("past_user_inputs") or []]
    answers = [str(t) for t in inputs.get("generated_responses") or []]
    warnings = []
    if len(past) != len(answers):
        warnings.append(
            f"past_user_inputs has {len(past)} turns but generated_responses has {len(answers)}; "
            "turns were paired in order."
        )
    messages: list[dict[str, str]] = []
    for i in range(max(len(past), len(answers))):
        if i < len(past):
            messages.append({"role": "user", "content": past[i]})
        if i < len(answers):
            messages.append({"role": "assistant", "content": answers[i]})
    messages.append({"role": "user", "content": str(inputs.get("text", ""))})
    return messages, warnings


def conversation_output(inputs: Mapping[str, Any], reply: str, warnings: list[str]) -> dict[str, Any]:
    return {
        "generated_text": reply,
        "conversation": {
            "past_user_inputs": [*(inputs.get("past_user_inputs") or []), inputs.get("text", "")],
            "generated_responses": [*(inputs.get("generated_responses") or []), reply],
        },
        "warnings": warnings,
    }


def _clean_answer(answer: str) -> str:
    answer = answer.strip().splitlines()[0].strip() if answer.strip() else ""
    return answer.strip(" \"'`*").rstrip(".!;,").strip()


def locate_answer(answer: str, question: str, context: str) -> tuple[int, int, float]:
    """Where the model's free-text `answer` is in `context`: (start, end, match quality in [0, 1]).

    1. the cleaned answer verbatim (case-insensitive) -> quality 1;
    2. else the run of context words holding most of the answer's informative words (those not in the question,
       e.g. "1889" in "The tower was completed in 1889"; earlier ones weigh more, numbers double for when/how
       much questions) -> quality = their share of the weight;
    3. else the longest common substring of answer and context; else the context sentence sharing most words
       with the question -> quality <= 0.5.
    """
    if not context:
        return 0, 0, 0.0
    cleaned = _clean_answer(answer)
    if cleaned:
        at = context.lower().find(cleaned.lower())
        if at >= 0:
            return at, at + len(cleaned), 1.0
    span = _informative_words_span(cleaned, question, context)
    if span is not None:
        return span
    if cleaned:
        matcher = difflib.SequenceMatcher(None, cleaned.lower(), context.lower(), autojunk=False)
        m = matcher.find_longest_match(0, len(cleaned), 0, len(context))
        if m.size >= 4:
            start, end = _trim(context, m.b, m.b + m.size)
            if end > start:
                return start, end, 0.5 * m.size / max(len(cleaned), 1)
    return _best_sentence(question, context)


def _words(text: str) -> list[tuple[str, int, int]]:
    return [(m.group().lower(), m.start(), m.end()) for m in _WORD.finditer(text)]


def _informative_words_span(answer: str, question: str, context: str) -> tuple[int, int, float] | None:
    asked = {w for w, _, _ in _words(question)} | _STOPWORDS
    # Informative answer words in the order the answer gives them: the first ones usually answer the question.
    wanted: dict[str, float] = {}
    numeric = bool(_NUMERIC_QUESTION.search(question))
    for w, _, _ in _words(answer):
        if w not in asked and w not in wanted:
            wanted[w] = 0.85 ** len(wanted) * (2.0 if numeric and any(c.isdigit() for c in w) else 1.0)
    if not wanted:
        return None
    words = _words(context)
    hits = [i for i, (w, _, _) in enumerate(words) if w in wanted]
    if not hits:
        return None
    # Group hits at most 5 words apart; keep the group whose distinct words weigh most.
    groups: list[list[int]] = [[hits[0]]]
    for i in hits[1:]:
        if i - groups[-1][-1] <= 5:
            groups[-1].append(i)
        else:
            groups.append([i])

    def weight(group: list[int]) -> float:
        return sum(wanted[w] for w in {words[i][0] for i in group})

    best = max(groups, key=lambda g: (weight(g), -(g[-1] - g[0])))
    return words[best[0]][1], words[best[-1]][2], weight(best) / sum(wanted.values())


def _trim(context: str, start: int, end: int) -> tuple[int, int]:
    while start < end and not context[start].isalnum():
        start += 1
    while end > start and not context[end - 1].isalnum():
        end -= 1
    return start, end


def _best_sentence(question: str, context: str) -> tuple[int, int, float]:
    asked = {w for w, _, _ in _words(question)} - _STOPWORDS
    best = (0, len(context), 0.0)
    best_overlap = -1
    for m in re.finditer(r"[^.!?\n]+[.!?]?", context):
        start, end = _trim(context, m.start(), m.end())
        if end <= start:
            continue
        overlap = len(asked & {w for w, _, _ in _words(context[start:end])})
        if overlap > best_overlap:
            best_overlap, best = overlap, (start, end, 0.0)
    start, end, _ = best
    return start, end, 0.5 * best_overlap / max(len(asked), 1) if best_overlap > 0 else 0.0


def qa_output(answer: str, question: str, context: str, confidence: float) -> dict[str, Any]:
    start, end, quality = locate_answer(answer, question, context)
    return {"score": round(confidence * quality, 6), "start": start, "end": end, "answer": context[start:end]}


def generation_parameters(
    task: str, parameters: Mapping[str, Any], defaults: Mapping[str, Any]
) -> dict[str, Any]:
    """Map a pipeline task's parameters (max_length, generate_parameters...) to text-generation ones."""
    params: dict[str, Any] = dict(defaults)
    extra = parameters.get("generate_parameters")
    if isinstance(extra, Mapping):
        params.update(extra)
    for name in ("temperature", "top_k", "top_p", "repetition_penalty", "max_time", "seed", "do_sample"):
        if parameters.get(name) is not None:
            params[name] = parameters[name]
    if parameters.get("max_length") is not None:
        params["max_new_tokens"] = int(parameters["max_length"])
    if parameters.get("max_new_tokens") is not None:
        params["max_new_tokens"] = int(parameters["max_new_tokens"])
    if task == "conversational" and params.get("temperature") is not None and "do_sample" not in params:
        params["do_sample"] = params["temperature"] > 0
    return params
