"""A connection states which request parameters its server takes (max_tokens or
max_completion_tokens, a temperature or none, a reasoning effort, the structured-output mode), and
a 400 that names a parameter the server refuses is reported as such and never retried. Against the
project's simulator, whose reasoning model refuses what current reasoning models refuse."""

from __future__ import annotations

import re

import pytest

from feedback.drafting import connections
from feedback.drafting.client import ChatParameters, LLMError, chat, request_body, unsupported_parameter
from feedback.drafting.models import CallStatus
from feedback.drafting.service import CallGate, draft_turn, drafter_settings
from tests.factories import SampleFactory

pytestmark = pytest.mark.django_db

REASONER = "annotator-simulator-reasoning"
MESSAGES = [{"role": "user", "content": "Describe the image."}]


def call(url: str, model: str, parameters: ChatParameters, temperature: float = 0.2):
    return chat(
        base_url=url,
        api_key="",
        model=model,
        messages=MESSAGES,
        temperature=temperature,
        max_tokens=64,
        timeout=5,
        parameters=parameters,
    )


def test_the_body_carries_only_the_parameters_the_server_takes():
    plain = request_body(model="m", messages=MESSAGES, temperature=0.2, max_tokens=64)
    assert (plain["max_tokens"], plain["temperature"]) == (64, 0.2)
    assert "max_completion_tokens" not in plain and "reasoning_effort" not in plain
    reasoning = request_body(
        model="m",
        messages=MESSAGES,
        temperature=0.2,
        max_tokens=64,
        parameters=ChatParameters(
            max_tokens_param="max_completion_tokens", send_temperature=False, reasoning_effort="low"
        ),
    )
    assert reasoning["max_completion_tokens"] == 64 and reasoning["reasoning_effort"] == "low"
    assert "max_tokens" not in reasoning and "temperature" not in reasoning


def test_a_refused_parameter_is_reported_by_name_and_not_retried(llm_simulator):
    with pytest.raises(LLMError) as refused:
        call(llm_simulator.url, REASONER, ChatParameters())
    assert not refused.value.retryable
    assert "'max_tokens'" in str(refused.value) and "max_tokens_param" in str(refused.value)
    with pytest.raises(LLMError) as hot:
        call(llm_simulator.url, REASONER, ChatParameters(max_tokens_param="max_completion_tokens"))
    assert not hot.value.retryable and "'temperature'" in str(hot.value)
    with pytest.raises(LLMError) as effort:
        call(llm_simulator.url, "annotator-simulator", ChatParameters(reasoning_effort="low"))
    assert not effort.value.retryable and "'reasoning_effort'" in str(effort.value)
    assert llm_simulator.stats()["bad_requests"] == 3


def test_a_reasoning_model_answers_with_the_parameters_it_takes(llm_simulator):
    result = call(
        llm_simulator.url,
        REASONER,
        ChatParameters(max_tokens_param="max_completion_tokens", send_temperature=False, reasoning_effort="high"),
    )
    assert result.text and result.simulated


def test_a_connection_of_a_reasoning_server_drafts(project, settings, llm_simulator):
    settings.LLM_CONNECTIONS = {
        "reasoner": {
            "base_url": llm_simulator.url,
            "models": [REASONER],
            "max_tokens_param": "max_completion_tokens",
            "temperature": False,
            "reasoning_effort": "medium",
            "structured": "json_object",
        }
    }
    turn = SampleFactory.create_numbered(1, project=project)[0].turns.get()
    cs = drafter_settings(project, connection="reasoner")
    assert (cs.model, cs.structured) == (REASONER, "json_object")  # the connection's own mode
    draft = draft_turn(turn=turn, sample=turn.sample, project=project, cs=cs, gate=CallGate())
    assert draft.status == CallStatus.OK, draft.error
    assert set(draft.scores) == set(project.criteria)
    # The same model through a connection that states nothing: refused by name, for the job to fail
    # the item at once (not retryable).
    settings.LLM_CONNECTIONS["plain"] = {"base_url": llm_simulator.url, "models": [REASONER]}
    plain = drafter_settings(project, connection="plain")
    with pytest.raises(LLMError, match="'max_tokens'") as refused:
        draft_turn(turn=turn, sample=turn.sample, project=project, cs=plain, gate=CallGate())
    assert not refused.value.retryable


def test_the_connection_parameters_are_checked_naming_the_field(settings):
    for spec, field in [
        ({"max_tokens_param": "max_output_tokens"}, "x.max_tokens_param"),
        ({"temperature": "no"}, "x.temperature"),
        ({"reasoning_effort": "extreme"}, "x.reasoning_effort"),
        ({"structured": "xml"}, "x.structured"),
    ]:
        settings.LLM_CONNECTIONS = {"x": {"base_url": "https://x.example.test/v1", **spec}}
        with pytest.raises(Exception, match=re.escape(field)):
            connections.registry()
    settings.LLM_CONNECTIONS = {"x": {"base_url": "https://x.example.test/v1"}}
    shown = connections.registry()["x"].public()
    assert (shown["max_tokens_param"], shown["temperature"], shown["structured"]) == ("max_tokens", True, "json_schema")


def test_which_answers_name_an_unsupported_parameter():
    assert (
        unsupported_parameter(400, '{"error": {"code": "unsupported_parameter", "param": "max_tokens"}}')
        == "max_tokens"
    )
    assert (
        unsupported_parameter(400, '{"error": {"message": "Unrecognized request argument supplied: top_k"}}') == "top_k"
    )
    assert unsupported_parameter(400, '{"error": {"message": "Invalid image URL"}}') is None
    assert unsupported_parameter(500, '{"error": {"code": "unsupported_parameter", "param": "max_tokens"}}') is None
    assert unsupported_parameter(400, "<html>bad gateway</html>") is None
