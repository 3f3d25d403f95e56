from typing import TypedDict

from ._base import InputKind, Param, Task


class TableQuestionAnsweringOutput(TypedDict):
    answer: str
    coordinates: list[list[int]]
    cells: list[str]
    aggregator: str


TASK = Task(
    name="table-question-answering",
    input_kind=InputKind.TABLE_QUERY,
    summary="Answer a question about a table.",
    output=TableQuestionAnsweringOutput,
    parameters=(
        Param("padding", str, "Padding strategy.", choices=("do_not_pad", "longest", "max_length")),
        Param("sequential", bool, "Answer queries one by one."),
        Param("truncation", bool, "Truncate long tables."),
    ),
    # huggingface_hub 0.2x-0.36 puts a per-call `model=` in the parameters; the URL names the model already.
    ignored_parameters=("model",),
    example_input={
        "query": "How many stars does the transformers repository have?",
        "table": {"Repository": ["Transformers", "Datasets"], "Stars": ["36542", "4512"]},
    },
    example_output={
        "answer": "AVERAGE > 36542",
        "coordinates": [[0, 1]],
        "cells": ["36542"],
        "aggregator": "AVERAGE",
    },
)
