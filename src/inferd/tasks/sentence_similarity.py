from ._base import InputKind, Task

TASK = Task(
    name="sentence-similarity",
    input_kind=InputKind.SENTENCES,
    summary="Score how close each sentence is to a source sentence (cosine similarity).",
    output=list[float],
    example_input={
        "source_sentence": "Machine learning is so easy.",
        "sentences": ["Deep learning is so straightforward."],
    },
    example_output=[0.7785726189613342],
    pipeline_route=True,
)
