"""Task methods whose input is text or a table (spec §5). Parameter meanings live in `inferd.tasks`."""

from __future__ import annotations

from typing import Any

from ..tasks._types import Label
from ..tasks.conversational import ConversationalOutput
from ..tasks.fill_mask import FillMaskOutput
from ..tasks.question_answering import QuestionAnsweringOutput
from ..tasks.table_question_answering import TableQuestionAnsweringOutput
from ..tasks.token_classification import TokenClassificationOutput
from . import _payloads as p
from ._async_base import _AsyncBase


class _AsyncTextTasks(_AsyncBase):
    async def conversational(
        self,
        text: str,
        generated_responses: list[str] | None = None,
        past_user_inputs: list[str] | None = None,
        *,
        parameters: dict[str, Any] | None = None,
        model: str | None = None,
    ) -> ConversationalOutput:
        """Legacy: the next turn of a conversation; prefer `chat_completion`.

        >>> client.conversational("Hi, who are you?")["generated_text"]
        'I am the one who knocks.'
        """
        inputs: dict[str, Any] = {"text": text}
        if generated_responses is not None:
            inputs["generated_responses"] = generated_responses
        if past_user_inputs is not None:
            inputs["past_user_inputs"] = past_user_inputs
        body = p.inputs_body(inputs, parameters or {})
        return await self._call_json("conversational", body, model=model)  # type: ignore[no-any-return]

    async def feature_extraction(
        self,
        text: str | list[str],
        *,
        model: str | None = None,
        normalize: bool | None = None,
        prompt_name: str | None = None,
        truncate: bool | None = None,
        truncation_direction: str | None = None,
        dimensions: int | None = None,
    ) -> Any:
        """Embeddings as a numpy float32 array; a list of texts gives one row each.

        >>> client.feature_extraction("Hi, who are you?").shape
        (1, 8, 768)
        """
        parameters = p.params(
            normalize=normalize,
            prompt_name=prompt_name,
            truncate=truncate,
            truncation_direction=truncation_direction,
            dimensions=dimensions,
        )
        body = p.inputs_body(text, parameters, top_level=True)
        return p.feature_extraction(await self._call_json("feature-extraction", body, model=model))

    async def fill_mask(
        self,
        text: str,
        *,
        model: str | None = None,
        top_k: int | None = None,
        targets: list[str] | None = None,
    ) -> list[FillMaskOutput]:
        """>>> client.fill_mask("The goal of life is <mask>.")[0]["token_str"]
        ' happiness'
        """
        body = p.inputs_body(text, p.params(top_k=top_k, targets=targets))
        return await self._call_json("fill-mask", body, model=model)  # type: ignore[no-any-return]

    async def question_answering(
        self,
        question: str,
        context: str,
        *,
        model: str | None = None,
        top_k: int | None = None,
        doc_stride: int | None = None,
        max_answer_len: int | None = None,
        max_seq_len: int | None = None,
        max_question_len: int | None = None,
        handle_impossible_answer: bool | None = None,
        align_to_words: bool | None = None,
    ) -> QuestionAnsweringOutput:
        """>>> client.question_answering("What's my name?", "My name is Clara.")["answer"]
        'Clara'
        """
        parameters = p.params(
            top_k=top_k,
            doc_stride=doc_stride,
            max_answer_len=max_answer_len,
            max_seq_len=max_seq_len,
            max_question_len=max_question_len,
            handle_impossible_answer=handle_impossible_answer,
            align_to_words=align_to_words,
        )
        body = p.with_parameters({"question": question, "context": context}, parameters)
        return await self._call_json("question-answering", body, model=model)  # type: ignore[no-any-return]

    async def sentence_similarity(
        self, sentence: str, other_sentences: list[str], *, model: str | None = None
    ) -> list[float]:
        """>>> client.sentence_similarity("Machine learning is so easy.", ["Deep learning is so straightforward."])
        [0.7785726189613342]
        """
        body = {"inputs": {"source_sentence": sentence, "sentences": other_sentences}}
        return await self._call_json("sentence-similarity", body, model=model)  # type: ignore[no-any-return]

    async def summarization(
        self,
        text: str,
        *,
        parameters: dict[str, Any] | None = None,
        model: str | None = None,
        clean_up_tokenization_spaces: bool | None = None,
        truncation: str | None = None,
        generate_parameters: dict[str, Any] | None = None,
        min_length: int | None = None,
        max_length: int | None = None,
    ) -> str:
        """>>> client.summarization("The Eiffel tower is 324 metres tall ...")
        'The Eiffel tower is 324 metres tall.'
        """
        given = p.params(
            clean_up_tokenization_spaces=clean_up_tokenization_spaces,
            truncation=truncation,
            generate_parameters=generate_parameters,
            min_length=min_length,
            max_length=max_length,
        )
        body = p.inputs_body(text, {**(parameters or {}), **given})
        return p.field(await self._call_json("summarization", body, model=model), "summary_text")  # type: ignore[no-any-return]

    async def table_question_answering(
        self,
        table: dict[str, Any],
        query: str,
        *,
        model: str | None = None,
        padding: str | None = None,
        sequential: bool | None = None,
        truncation: bool | None = None,
    ) -> TableQuestionAnsweringOutput:
        """>>> client.table_question_answering({"Repository": ["Transformers"], "Stars": ["36542"]}, "How many stars?")
        {'answer': 'AVERAGE > 36542', 'coordinates': [[0, 1]], 'cells': ['36542'], 'aggregator': 'AVERAGE'}
        """
        body = p.with_parameters(
            {"query": query, "table": table},
            p.params(padding=padding, sequential=sequential, truncation=truncation),
        )
        return await self._call_json("table-question-answering", body, model=model)  # type: ignore[no-any-return]

    async def tabular_classification(self, table: dict[str, Any], *, model: str | None = None) -> list[str]:
        """>>> client.tabular_classification({"fixed_acidity": ["7.4"], ...}, model="julien-c/wine-quality")
        ['5']
        """
        return await self._call_json("tabular-classification", {"table": table}, model=model)  # type: ignore[no-any-return]

    async def tabular_regression(self, table: dict[str, Any], *, model: str | None = None) -> list[float]:
        """>>> client.tabular_regression({"Height": ["11.52"], ...}, model="scikit-learn/Fish-Weight")
        [110.0]
        """
        return await self._call_json("tabular-regression", {"table": table}, model=model)  # type: ignore[no-any-return]

    async def text_classification(
        self,
        text: str,
        *,
        model: str | None = None,
        top_k: int | None = None,
        function_to_apply: str | None = None,
    ) -> list[Label]:
        """>>> client.text_classification("I like you")
        [{'label': 'POSITIVE', 'score': 0.9998695850372314}, {'label': 'NEGATIVE', 'score': 0.0001304351753788069}]
        """
        body = p.inputs_body(text, p.params(top_k=top_k, function_to_apply=function_to_apply))
        return p.classification(await self._call_json("text-classification", body, model=model))

    async def token_classification(
        self,
        text: str,
        *,
        model: str | None = None,
        aggregation_strategy: str | None = None,
        ignore_labels: list[str] | None = None,
        stride: int | None = None,
    ) -> list[TokenClassificationOutput]:
        """>>> client.token_classification("My name is Sarah Jessica Parker")[0]["entity_group"]
        'PER'
        """
        parameters = p.params(
            aggregation_strategy=aggregation_strategy, ignore_labels=ignore_labels, stride=stride
        )
        body = p.inputs_body(text, parameters)
        return await self._call_json("token-classification", body, model=model)  # type: ignore[no-any-return]

    async def translation(
        self,
        text: str,
        *,
        model: str | None = None,
        src_lang: str | None = None,
        tgt_lang: str | None = None,
        clean_up_tokenization_spaces: bool | None = None,
        truncation: str | None = None,
        generate_parameters: dict[str, Any] | None = None,
    ) -> str:
        """>>> client.translation("My name is Wolfgang", model="Helsinki-NLP/opus-mt-en-de")
        'Mein Name ist Wolfgang'
        """
        p.check_translation_langs(src_lang, tgt_lang)
        parameters = p.params(
            src_lang=src_lang,
            tgt_lang=tgt_lang,
            clean_up_tokenization_spaces=clean_up_tokenization_spaces,
            truncation=truncation,
            generate_parameters=generate_parameters,
        )
        body = p.inputs_body(text, parameters)
        return p.field(await self._call_json("translation", body, model=model), "translation_text")  # type: ignore[no-any-return]

    async def zero_shot_classification(
        self,
        text: str,
        labels: list[str] | None = None,
        *,
        multi_label: bool = False,
        model: str | None = None,
        candidate_labels: list[str] | None = None,
        hypothesis_template: str | None = None,
    ) -> list[Label]:
        """>>> client.zero_shot_classification("I love hiking", ["outdoors", "cooking"])
        [{'label': 'outdoors', 'score': 0.98}, {'label': 'cooking', 'score': 0.02}]
        """
        parameters = {
            "candidate_labels": p.join_labels(candidate_labels or labels or []),
            "multi_label": multi_label,
            **p.params(hypothesis_template=hypothesis_template),
        }
        body = p.inputs_body(text, parameters)
        return p.zero_shot(await self._call_json("zero-shot-classification", body, model=model))
