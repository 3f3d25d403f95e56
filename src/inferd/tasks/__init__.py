"""The registry of tasks: one entry per task, each defined in its own module."""

from __future__ import annotations

from . import (
    audio_classification,
    audio_to_audio,
    automatic_speech_recognition,
    conversational,
    document_question_answering,
    feature_extraction,
    fill_mask,
    image_classification,
    image_segmentation,
    image_to_image,
    image_to_text,
    object_detection,
    question_answering,
    sentence_similarity,
    summarization,
    table_question_answering,
    tabular_classification,
    tabular_regression,
    text_classification,
    text_generation,
    text_to_image,
    text_to_speech,
    token_classification,
    translation,
    visual_question_answering,
    zero_shot_classification,
    zero_shot_image_classification,
)
from ._base import InputKind, Param, ParameterError, Task
from ._types import Audio, Box, Label

_MODULES = (
    audio_classification,
    audio_to_audio,
    automatic_speech_recognition,
    conversational,
    document_question_answering,
    feature_extraction,
    fill_mask,
    image_classification,
    image_segmentation,
    image_to_image,
    image_to_text,
    object_detection,
    question_answering,
    sentence_similarity,
    summarization,
    table_question_answering,
    tabular_classification,
    tabular_regression,
    text_classification,
    text_generation,
    text_to_image,
    text_to_speech,
    token_classification,
    translation,
    visual_question_answering,
    zero_shot_classification,
    zero_shot_image_classification,
)

TASKS: dict[str, Task] = {m.TASK.name: m.TASK for m in _MODULES}

# Chat completion is a protocol (OpenAI's), served by text-generation models; it is named here so that
# catalogues and /api/tasks can list it, but it has no Task object of its own.
CHAT_COMPLETION = "chat-completion"


def get_task(name: str) -> Task:
    """Look a task up by its wire name (kebab-case) or Python name (snake_case)."""
    key = name.replace("_", "-")
    try:
        return TASKS[key]
    except KeyError:
        raise KeyError(f"Unknown task '{name}'. Known tasks: {', '.join(sorted(TASKS))}.") from None


__all__ = [
    "CHAT_COMPLETION",
    "TASKS",
    "Audio",
    "Box",
    "InputKind",
    "Label",
    "Param",
    "ParameterError",
    "Task",
    "get_task",
]
