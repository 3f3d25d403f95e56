"""Parameters that several tasks share, declared once."""

from __future__ import annotations

from ._base import Param

TOP_K = Param("top_k", int, "Return only the `top_k` best results.", minimum=1)
FUNCTION_TO_APPLY = Param(
    "function_to_apply",
    str,
    "Function applied to the model's outputs to get scores.",
    choices=("sigmoid", "softmax", "none"),
)
# The model scores every input against every label: 32 inputs (the default --max-client-batch-size) times 64
# labels is 2048 pairs, the size of the largest embeddings batch (/v1/embeddings).
MAX_CANDIDATE_LABELS = 64
CANDIDATE_LABELS = Param(
    "candidate_labels",
    list,
    f"The labels to choose from (a list, or one comma-separated string), at most {MAX_CANDIDATE_LABELS}.",
    items=str,
    min_items=1,
    max_items=MAX_CANDIDATE_LABELS,
    required=True,
    comma_separated=True,
)
HYPOTHESIS_TEMPLATE = Param(
    "hypothesis_template", str, "Sentence the label is put into, with `{}` where the label goes."
)
MAX_NEW_TOKENS = Param(
    "max_new_tokens", int, "Largest number of tokens to generate.", minimum=1, maximum=4096
)
GENERATE_PARAMETERS = Param(
    "generate_parameters", dict, "Extra generation settings passed to the model's generate()."
)
TRUNCATION = Param(
    "truncation",
    str,
    "How to truncate inputs longer than the model takes.",
    choices=("do_not_truncate", "longest_first", "only_first", "only_second"),
)
CLEAN_UP_TOKENIZATION_SPACES = Param(
    "clean_up_tokenization_spaces", bool, "Remove the extra spaces tokenization leaves in the output."
)
QA_PARAMETERS = (
    Param("top_k", int, "Number of answers to return, best first.", minimum=1, maximum=100),
    Param("doc_stride", int, "Overlap between chunks of a long context, in tokens.", minimum=1),
    Param("max_answer_len", int, "Longest answer to consider, in tokens.", minimum=1),
    Param(
        "max_seq_len", int, "Longest chunk (context plus question) fed to the model, in tokens.", minimum=1
    ),
    Param("max_question_len", int, "Longest question after tokenization.", minimum=1),
    Param("handle_impossible_answer", bool, "Accept an empty answer."),
)
IMAGE_GENERATION_PARAMETERS = (
    Param("negative_prompt", str, "What the image should not show."),
    Param("height", int, "Height of the image in pixels.", minimum=8, maximum=4096),
    Param("width", int, "Width of the image in pixels.", minimum=8, maximum=4096),
    Param("num_inference_steps", int, "Number of denoising steps.", minimum=1, maximum=500),
    Param("guidance_scale", float, "How closely the image follows the prompt.", minimum=0, maximum=100),
    Param(
        "seed",
        int,
        "Seed of the random generator: the same seed gives the same image.",
        minimum=0,
        maximum=2**32 - 1,
    ),
    Param("scheduler", str, "Name of the scheduler to use."),
)
