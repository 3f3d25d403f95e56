from ._base import InputKind, Task

TASK = Task(
    name="tabular-regression",
    input_kind=InputKind.TABLE,
    summary="Predict a number for each row of a table.",
    output=list[float],
    example_input={
        "age": ["0.038"],
        "sex": ["0.05"],
        "bmi": ["0.062"],
        "bp": ["0.022"],
        "s1": ["-0.044"],
        "s2": ["-0.035"],
        "s3": ["-0.043"],
        "s4": ["-0.003"],
        "s5": ["0.02"],
        "s6": ["-0.018"],
    },
    example_output=[206.1],
)
