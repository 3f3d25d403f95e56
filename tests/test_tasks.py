import pytest

from inferd.tasks import TASKS, InputKind, ParameterError, get_task


def test_every_task_is_registered_under_its_wire_name():
    assert len(TASKS) == 27
    for name, task in TASKS.items():
        assert task.name == name
        assert name == name.lower() and "_" not in name
        assert isinstance(task.input_kind, InputKind)


def test_lookup_by_python_name():
    assert get_task("text_classification") is TASKS["text-classification"]
    with pytest.raises(KeyError, match="Unknown task"):
        get_task("make-coffee")


def test_parameters_are_checked_against_their_limits():
    task = get_task("text-classification")
    assert task.validate_parameters({"top_k": 2}) == {"top_k": 2}
    with pytest.raises(ParameterError, match="top_k"):
        task.validate_parameters({"top_k": 0})
    with pytest.raises(ParameterError, match="top_k"):
        task.validate_parameters({"top_k": "two"})
    with pytest.raises(ParameterError, match="Unknown parameter"):
        task.validate_parameters({"temperature": 1.0})


def test_numbers_widen_but_booleans_are_not_numbers():
    gen = get_task("text-generation")
    assert gen.validate_parameters({"temperature": 1}) == {"temperature": 1.0}
    with pytest.raises(ParameterError):
        gen.validate_parameters({"max_new_tokens": True})
    with pytest.raises(ParameterError, match="top_p"):
        gen.validate_parameters({"top_p": 1.5})


def test_parameter_schema_is_json_schema():
    schema = get_task("zero-shot-classification").parameters_schema()
    assert schema["properties"]["candidate_labels"]["anyOf"][0]["type"] == "array"
    assert schema["required"] == ["candidate_labels"] and schema["additionalProperties"] is False


def test_candidate_labels_are_bounded_in_both_forms():
    """Each label is scored against each input: a request cannot ask for an unbounded number of them."""
    task = get_task("zero-shot-classification")
    for labels in (["x"] * 65, ",".join(["x"] * 65)):
        with pytest.raises(ParameterError, match="at most 64"):
            task.validate_parameters({"candidate_labels": labels})
    assert (
        task.validate_parameters({"candidate_labels": ",".join(["x"] * 64)})["candidate_labels"] == ["x"] * 64
    )
    schema = task.parameters_schema()["properties"]["candidate_labels"]
    assert schema["anyOf"][0]["maxItems"] == 64


_SAMPLES = (
    None,
    True,
    False,
    0,
    1,
    -1,
    3.0,
    0.5,
    1.5,
    5000,
    "x",
    "",
    " , ",
    "a,b",
    [],
    ["a"],
    ["a"] * 5,
    ["a"] * 64,
    ["a"] * 65,
    ",".join(["a"] * 64) + " ,, ",
    ",".join(["a"] * 65),
    " ,a b,, c d ,",
    [1],
    {},
)


@pytest.mark.parametrize("task", list(TASKS.values()), ids=lambda t: t.name)
def test_the_parameter_schema_accepts_exactly_what_validation_accepts(task):
    """The OpenAPI schema is built from parameters_schema(): it must agree with the server's own check."""
    jsonschema = pytest.importorskip("jsonschema")
    validator = jsonschema.Draft202012Validator(task.parameters_schema())
    base = {p.name: ["a"] for p in task.parameters if p.required}
    for param in task.parameters:
        for value in _SAMPLES:
            params = {**base, param.name: value}
            try:
                task.validate_parameters(params)
                accepted = True
            except ParameterError:
                accepted = False
            assert validator.is_valid(params) == accepted, (param.name, value)
