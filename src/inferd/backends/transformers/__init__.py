"""The `transformers` backend: any HF-format model folder (safetensors only), on CPU, through pipelines.

    from inferd.backends import get_backend
    model = get_backend("transformers").load(entry, "/models/distilbert-sst2")
    model.predict("text-classification", ["I love it", "meh"], {"top_k": 1})

What `predict` returns per input (the server turns a single input's result into the wire body, servers.md
§1.5 column b, adding the outer list where the API has one, and encoding media):

| task | per input |
| --- | --- |
| text-classification | [{label, score}] best first, all labels unless top_k (server adds the outer list) |
| token-classification | [{entity_group, score, word, start, end}] (aggregation "simple" by default) |
| question-answering | {answer, score, start, end}; a list of those when top_k > 1 |
| fill-mask | [{sequence, score, token, token_str}] |
| zero-shot-classification | [{label, score}] best first |
| table-question-answering | {answer, coordinates, cells, aggregator} |
| summarization | {summary_text} (server wraps in a list) |
| translation | {translation_text} (server wraps in a list) |
| text-generation | {generated_text} (server wraps in a list); TGI/OpenAI go through TextGenerator |
| conversational | {generated_text, conversation: {past_user_inputs, generated_responses}, warnings} |
| feature-extraction | numpy float32: [1, seq, hidden] per text (as the pipeline), [hidden] for sentence-transformers |
| sentence-similarity | [float] cosine of the source with each sentence |
| image-classification | [{label, score}] best first |
| object-detection | [{label, score, box: {xmin, ymin, xmax, ymax}}] |
| image-segmentation | [{label, score (None for semantic), mask: PIL.Image mode "L"}] |
| image-to-image | PIL image (super-resolution: the input scaled by the model's `upscale`) |
| image-to-text | {generated_text} (server wraps in a list) |
| zero-shot-image-classification | [{label, score}] best first |
| visual-question-answering | [{answer, score}] best first |
| document-question-answering | [{answer, score, start, end}] (needs the `word_boxes` parameter: no OCR) |
| automatic-speech-recognition | {text} (+ chunks: [{text, timestamp: [start, end]}] with return_timestamps) |
| audio-classification | [{label, score}] best first |
| text-to-speech | inferd.tasks.Audio (mono float32) |

All numbers are Python floats and ints. Task parameters the backend cannot honour raise InputError naming them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ..base import Backend, InputError, Model, estimate_tokens
from ..weights import check_finite_weights
from ._common import Runner, UnsafeModelError, check_folder, check_params, configure_threads, module_bytes

if TYPE_CHECKING:
    from ...catalogue import ModelEntry

GENERATION_TASKS = frozenset({"text-generation", "conversational", "chat-completion"})


def _runner_class(task: str) -> type[Runner]:
    from . import audio, embeddings, text, vision

    classes: dict[str, type[Runner]] = {
        "text-classification": text.TextClassification,
        "token-classification": text.TokenClassification,
        "question-answering": text.QuestionAnswering,
        "fill-mask": text.FillMask,
        "zero-shot-classification": text.ZeroShotClassification,
        "table-question-answering": text.TableQuestionAnswering,
        "summarization": text.Summarization,
        "translation": text.Translation,
        "feature-extraction": embeddings.FeatureExtraction,
        "sentence-similarity": embeddings.SentenceSimilarity,
        "image-classification": vision.ImageClassification,
        "object-detection": vision.ObjectDetection,
        "image-segmentation": vision.ImageSegmentation,
        "image-to-image": vision.ImageToImage,
        "image-to-text": vision.ImageToText,
        "zero-shot-image-classification": vision.ZeroShotImageClassification,
        "visual-question-answering": vision.VisualQuestionAnswering,
        "document-question-answering": vision.DocumentQuestionAnswering,
        "automatic-speech-recognition": audio.SpeechRecognition,
        "audio-classification": audio.AudioClassification,
        "text-to-speech": audio.TextToSpeech,
    }
    if task not in classes:
        raise ValueError(f"The transformers backend does not serve task '{task}'.")
    return classes[task]


SUPPORTED_TASKS = (
    "audio-classification",
    "automatic-speech-recognition",
    "conversational",
    "document-question-answering",
    "feature-extraction",
    "fill-mask",
    "image-classification",
    "image-segmentation",
    "image-to-image",
    "image-to-text",
    "object-detection",
    "question-answering",
    "sentence-similarity",
    "summarization",
    "table-question-answering",
    "text-classification",
    "text-generation",
    "text-to-speech",
    "token-classification",
    "translation",
    "visual-question-answering",
    "zero-shot-classification",
    "zero-shot-image-classification",
)


class PipelineModel(Model):
    """One model folder serving one or more non-generative tasks, one runner per task."""

    def __init__(self, entry: ModelEntry, runners: Mapping[str, Runner]) -> None:
        self.entry = entry
        self.runners = dict(runners)
        self.tasks = tuple(runners)
        self.approximations = dict(entry.approximations)

    def predict(self, task: str, inputs: Sequence[Any], parameters: Mapping[str, Any]) -> list[Any]:
        runner = self.runners.get(task)
        if runner is None:
            raise InputError(f"Model '{self.entry.model_id}' does not serve task '{task}'.")
        if not inputs:
            return []
        check_params(task, parameters, runner.honoured)
        results = runner.run(inputs, parameters)
        if len(results) != len(inputs):
            raise RuntimeError(f"{task}: {len(results)} results for {len(inputs)} inputs.")
        return results

    def input_tokens(self, task: str, item: Any) -> int:
        runner = self.runners.get(task)
        limit = runner.max_input_tokens if runner is not None else 0
        return estimate_tokens(item, limit) if limit > 0 else 0

    def memory_bytes(self) -> int:
        modules = [m for r in self.runners.values() for m in r.modules()]
        return module_bytes(modules) + sum(r.extra_bytes for r in self.runners.values())

    def close(self) -> None:
        self.runners.clear()


class TransformersBackend(Backend):
    name = "transformers"

    def load(self, entry: ModelEntry, path: str) -> Model:
        check_folder(entry, path)
        configure_threads()
        tasks = tuple(entry.tasks)
        if GENERATION_TASKS & set(tasks):
            other = sorted(set(tasks) - GENERATION_TASKS)
            if other:
                raise ValueError(
                    f"Model '{entry.model_id}': a text-generation model cannot also serve {other}; "
                    "give those tasks their own catalogue entry."
                )
            from .generation import TransformersGenerator

            return TransformersGenerator(entry, path)
        runners: dict[str, Runner] = {}
        shared: dict[str, Any] = {}
        for task in tasks:
            cls = _runner_class(task)
            runners[task] = cls(entry, path, shared) if cls.shares_model else cls(entry, path)  # type: ignore[call-arg]
        for runner in runners.values():
            for module in runner.modules():
                named = getattr(module, "named_parameters", None)
                if named is not None:
                    check_finite_weights(named(), f"Model '{entry.model_id}'")
        return PipelineModel(entry, runners)


__all__ = ["SUPPORTED_TASKS", "PipelineModel", "TransformersBackend", "UnsafeModelError"]
