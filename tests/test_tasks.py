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
    assert schema["properties"]["candidate_labels"]["type"] == "array"
    assert schema["additionalProperties"] is False
