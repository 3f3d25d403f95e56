from typing import TypedDict

from ._base import InputKind, Param, Task


class Conversation(TypedDict):
    generated_responses: list[str]
    past_user_inputs: list[str]


class ConversationalOutput(TypedDict):
    generated_text: str
    conversation: Conversation
    warnings: list[str]


TASK = Task(
    name="conversational",
    input_kind=InputKind.CONVERSATION,
    summary="Answer the next turn of a conversation (legacy; prefer chat completion).",
    output=ConversationalOutput,
    parameters=(
        Param("max_length", int, "Longest answer in tokens.", minimum=1, maximum=4096),
        Param("min_length", int, "Shortest answer in tokens.", minimum=0),
        Param("max_time", float, "Seconds the model may spend.", minimum=0, maximum=120),
        Param("repetition_penalty", float, "Penalty on repeated tokens.", minimum=0, maximum=100),
        Param("temperature", float, "Sampling temperature.", minimum=0, maximum=100),
        Param("top_k", int, "Sample from the k likeliest tokens.", minimum=1),
        Param(
            "top_p",
            float,
            "Sample from the smallest set of tokens whose probability reaches p.",
            minimum=0,
            maximum=1,
        ),
    ),
    example_input={"text": "Hi!", "past_user_inputs": [], "generated_responses": []},
    example_output={
        "generated_text": "Hello!",
        "conversation": {"generated_responses": ["Hello!"], "past_user_inputs": ["Hi!"]},
        "warnings": [],
    },
)
