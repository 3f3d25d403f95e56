from ._base import InputKind, Param, Task

# TGI's GenerateParameters (servers.md §2.3); limits are TGI's validation rules.
TASK = Task(
    name="text-generation",
    input_kind=InputKind.TEXT,
    summary="Continue a prompt (TGI protocol, streaming with server-sent events).",
    output=str,
    parameters=(
        Param(
            "best_of",
            int,
            "Generate this many sequences and keep the best.",
            minimum=0,
            exclusive_minimum=True,
            maximum=2,
        ),
        Param("decoder_input_details", bool, "Return the prompt tokens with their log-probabilities."),
        Param("details", bool, "Return tokens, log-probabilities and the finish reason."),
        Param("do_sample", bool, "Sample instead of greedy decoding."),
        Param(
            "frequency_penalty", float, "Penalty on tokens by how often they appeared.", minimum=-2, maximum=2
        ),
        Param("grammar", dict, "Constrain the output to a JSON schema or a regex."),
        Param("max_new_tokens", int, "Largest number of tokens to generate.", minimum=1, maximum=4096),
        Param("repetition_penalty", float, "Penalty on repeated tokens.", minimum=0, exclusive_minimum=True),
        Param("return_full_text", bool, "Put the prompt before the generated text."),
        Param("seed", int, "Seed of the random generator.", minimum=0),
        Param(
            "stop", list, "Stop when one of these strings is generated (at most 4).", items=str, max_items=4
        ),
        Param("temperature", float, "Sampling temperature.", minimum=0, exclusive_minimum=True),
        Param("top_k", int, "Sample from the k likeliest tokens.", minimum=0, exclusive_minimum=True),
        Param("top_n_tokens", int, "Return the n likeliest tokens at each step.", minimum=0, maximum=5),
        Param(
            "top_p",
            float,
            "Sample from the smallest set of tokens whose probability reaches p.",
            minimum=0,
            exclusive_minimum=True,
            maximum=1,
        ),
        Param(
            "truncate", int, "Keep only the last `truncate` prompt tokens.", minimum=0, exclusive_minimum=True
        ),
        Param("typical_p", float, "Typical decoding mass.", minimum=0, exclusive_minimum=True, maximum=1),
        Param("watermark", bool, "Watermark the output (TGI only)."),
        Param("adapter_id", str, "LoRA adapter to use (TGI only)."),
    ),
    example_input="The huggingface_hub library is ",
    single_input=True,
    example_output="a library that lets you download and upload models.",
)
