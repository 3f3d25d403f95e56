from ._base import InputKind, Task

TASK = Task(
    name="tabular-classification",
    input_kind=InputKind.TABLE,
    summary="Predict a class for each row of a table.",
    output=list[str],
    example_input={
        "sepal length (cm)": ["5.1"],
        "sepal width (cm)": ["3.5"],
        "petal length (cm)": ["1.4"],
        "petal width (cm)": ["0.2"],
    },
    example_output=["setosa"],
)
