"""A task no model serves: /api/tasks, the pipeline route and inferd's client all say how to add one."""

import asyncio

import pytest
from appkit import running, serving

from inferd import InferenceClient

PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c4890000000d4944415478da63f8cfc0f01f0005"
    "0001ffa55d3a0f0000000049454e44ae426082"
)


async def test_api_tasks_lists_unserved_tasks_with_a_note(tmp_path):
    async with running(tmp_path) as client:
        tasks = (await client.get("/api/tasks")).json()
    assert tasks["text-classification"]["widgetModels"] == ["toy/text"]
    dqa = tasks["document-question-answering"]
    assert dqa["widgetModels"] == []
    assert "No model is installed for task 'document-question-answering'" in dqa["note"]
    assert 'backend = "transformers"' in dqa["note"]


async def test_pipeline_route_for_an_unserved_task_says_how_to_configure(tmp_path):
    async with running(tmp_path) as client:
        answer = await client.post(
            "/pipeline/document-question-answering/impira/layoutlm-document-qa", json={"inputs": "x"}
        )
        unknown_model = await client.post("/models/no/such-model", json={"inputs": "Hi"})
    assert answer.status_code == 404
    assert answer.json()["error_type"] == "not_found"
    assert "inferd serve --config" in answer.json()["error"]
    # A model id that is simply unknown (for a served task) keeps the plain not-found answer.
    assert unknown_model.status_code == 404
    assert "not served here" in unknown_model.json()["error"]


async def test_client_raises_the_server_note(tmp_path):
    async with serving(tmp_path) as (base, _):

        def call() -> None:
            with InferenceClient(base_url=base, timeout=10) as client:
                assert client.text_classification("I love it")[0]["label"] == "POSITIVE"
                with pytest.raises(
                    ValueError, match="No model is installed for task 'document-question-answering'"
                ):
                    client.document_question_answering(PNG, "What is the total?")

        await asyncio.to_thread(call)
