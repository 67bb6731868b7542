"""The LLM simulator over real sockets, with the real client: content, limits, faults, control, command."""

from __future__ import annotations

import http.client
import json
import math
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import openai
import pytest
from openai.types import CompletionUsage
from openai.types.chat import ChatCompletion, ChatCompletionContentPartImageParam, ChatCompletionMessageParam
from openai.types.shared_params import ResponseFormatJSONSchema

from simulator import SimulatorServer
from tests.simulator import llm_simulator_fixture  # noqa: F401

ROOT = Path(__file__).resolve().parents[1]

SYSTEM = "You are a careful annotator. Judge the response against the image annotations and the reference."
PROMPT = """Criterion: helpfulness, honesty and harmlessness.

## Image annotations
- Caption: a dog on a sofa
- Object: dog [12, 40, 200, 150]
- Region: a red pillow [5, 5, 50, 60]

## Conversation so far
User: What is the animal doing?

## Response under review
The dog is sleeping on the couch.

## Reference answer
The dog is lying on a sofa next to a red pillow, resting quietly.
"""
SCORE = {"type": "integer", "minimum": 1, "maximum": 7}
DRESS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "critique": {"type": "string"},
        "refinement": {"type": "string"},
        "scores": {
            "type": "object",
            "properties": {"helpfulness": SCORE, "honesty": SCORE, "harmlessness": SCORE},
            "required": ["helpfulness", "honesty", "harmlessness"],
            "additionalProperties": False,
        },
        "overall": SCORE,
    },
    "required": ["critique", "refinement", "scores", "overall"],
    "additionalProperties": False,
}
JSON_SCHEMA_FORMAT: ResponseFormatJSONSchema = {
    "type": "json_schema",
    "json_schema": {"name": "feedback", "schema": DRESS_SCHEMA, "strict": True},
}


def client(sim: SimulatorServer, key: str = "test-key", timeout: float = 5.0) -> openai.OpenAI:
    return openai.OpenAI(base_url=sim.url, api_key=key, max_retries=0, timeout=timeout)


def messages(prompt: str = PROMPT) -> list[ChatCompletionMessageParam]:
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": prompt}]


def ask_feedback(sim: SimulatorServer, prompt: str = PROMPT, **kwargs: Any) -> ChatCompletion:
    return client(sim).chat.completions.create(
        model="annotator-simulator", messages=messages(prompt), response_format=JSON_SCHEMA_FORMAT, **kwargs
    )


def text_of(completion: ChatCompletion) -> str:
    """The first choice's text, which every completion of these tests has."""
    content = completion.choices[0].message.content
    assert content is not None
    return content


def usage_of(completion: ChatCompletion) -> CompletionUsage:
    assert completion.usage is not None
    return completion.usage


def raw(
    sim: SimulatorServer,
    method: str,
    path: str,
    body: bytes | dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 5.0,
) -> tuple[int, dict[str, str], Any]:
    """One plain HTTP request; returns status, lower-cased headers and the parsed JSON body."""
    connection = http.client.HTTPConnection("127.0.0.1", sim.port, timeout=timeout)
    try:
        data = json.dumps(body).encode() if isinstance(body, dict) else body
        connection.request(method, path, body=data, headers={"Content-Type": "application/json", **(headers or {})})
        response = connection.getresponse()
        payload = response.read()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, json.loads(payload)
    finally:
        connection.close()


def chat_body(prompt: str = PROMPT, response_format: Mapping[str, Any] | None = JSON_SCHEMA_FORMAT) -> dict[str, Any]:
    body: dict[str, Any] = {"model": "annotator-simulator", "messages": messages(prompt)}
    if response_format is not None:
        body["response_format"] = response_format
    return body


def problems(value: Any, schema: dict[str, Any], where: str = "$") -> list[str]:
    """A small JSON-schema check (the subset the platform uses): what does not conform."""
    kind = schema.get("type")
    if kind == "object":
        if not isinstance(value, dict):
            return [f"{where} is not an object"]
        found = [f"{where}.{key} is missing" for key in schema.get("required", []) if key not in value]
        properties = schema.get("properties", {})
        if schema.get("additionalProperties") is False:
            found += [f"{where}.{key} is not allowed" for key in value if key not in properties]
        for key, sub in properties.items():
            if key in value:
                found += problems(value[key], sub, f"{where}.{key}")
        return found
    if kind == "integer":
        if not isinstance(value, int) or isinstance(value, bool):
            return [f"{where} is not an integer"]
        if not schema.get("minimum", value) <= value <= schema.get("maximum", value):
            return [f"{where}={value} is out of bounds"]
        return []
    if kind == "string":
        return [] if isinstance(value, str) and value.strip() else [f"{where} is not a non-empty string"]
    if kind == "array":
        if not isinstance(value, list):
            return [f"{where} is not an array"]
        return [p for i, item in enumerate(value) for p in problems(item, schema.get("items", {}), f"{where}[{i}]")]
    if kind == "boolean":
        return [] if isinstance(value, bool) else [f"{where} is not a boolean"]
    return []


def sentences(text: str) -> int:
    return len(re.findall(r"[.!?](?:\s|$)", text))


# --- content -------------------------------------------------------------------------------------


def test_models_lists_its_models(llm_simulator):
    models = client(llm_simulator).models.list()
    assert [m.id for m in models] == [
        "annotator-simulator",
        "annotator-simulator-vision",
        "annotator-simulator-reasoning",
    ]
    assert {m.owned_by for m in models} == {"annotator"}
    assert llm_simulator.url == f"http://127.0.0.1:{llm_simulator.port}/v1"


def test_json_schema_answer_conforms_and_reads_the_prompt(llm_simulator):
    completion = ask_feedback(llm_simulator)
    assert completion.object == "chat.completion"
    assert completion.id.startswith("chatcmpl-sim-")
    assert completion.model == "annotator-simulator"
    assert completion.system_fingerprint == "annotator-simulator"
    choice = completion.choices[0]
    assert choice.finish_reason == "stop"
    assert choice.message.role == "assistant"
    data = json.loads(text_of(completion))
    assert problems(data, DRESS_SCHEMA) == []
    # The response names the dog but not the pillow: the critique says both, the advice adds the pillow.
    assert "dog" in data["critique"]
    assert "red pillow" in data["critique"]
    assert "pillow" in data["refinement"]
    assert 2 <= sentences(data["critique"]) <= 4
    usage = usage_of(completion)
    assert usage.prompt_tokens == math.ceil((len(SYSTEM) + len(PROMPT)) / 4)
    assert usage.completion_tokens == math.ceil(len(text_of(completion)) / 4)
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens


def test_scores_lean_on_agreement_with_the_reference(llm_simulator):
    good = PROMPT.replace(
        "The dog is sleeping on the couch.", "The dog is lying on a sofa next to a red pillow, resting quietly."
    )
    bad = PROMPT.replace("The dog is sleeping on the couch.", "A bowl of soup sits on a wooden table.")
    good_scores = json.loads(text_of(ask_feedback(llm_simulator, good)))
    bad_scores = json.loads(text_of(ask_feedback(llm_simulator, bad)))
    assert good_scores["scores"]["helpfulness"] >= 6
    assert bad_scores["scores"]["helpfulness"] <= 3
    assert good_scores["overall"] > bad_scores["overall"]
    assert bad_scores["scores"]["harmlessness"] >= 5  # an off-topic answer is still harmless


def test_same_input_same_content_different_input_different_content(llm_simulator):
    first = text_of(ask_feedback(llm_simulator))
    again = text_of(ask_feedback(llm_simulator))
    other = text_of(ask_feedback(llm_simulator, PROMPT.replace("sleeping", "barking")))
    assert first == again
    assert other != first
    responder = client(llm_simulator).chat.completions.create(model="annotator-simulator", messages=messages())
    assert text_of(responder) != first  # the format is part of the input


def test_text_and_image_parts_are_accepted_and_counted(llm_simulator):
    text = "## Image annotations\n- Caption: two cats on a windowsill\n\nWhat do you see?"
    image: ChatCompletionContentPartImageParam = {
        "type": "image_url",
        "image_url": {"url": "data:image/jpeg;base64,/9j/4AAQSkZJRgABAQAAAQ=="},
    }
    completion = client(llm_simulator).chat.completions.create(
        model="annotator-simulator-vision",
        messages=[{"role": "user", "content": [{"type": "text", "text": text}, image, image]}],
    )
    assert completion.model == "annotator-simulator-vision"
    assert usage_of(completion).prompt_tokens == math.ceil(len(text) / 4) + 2 * 85
    assert "two cats on a windowsill" in text_of(completion)


def test_plain_text_answer_uses_the_annotations(llm_simulator):
    prompt = "## Image annotations\n- Caption: a dog on a sofa\n- Object: dog [1, 2, 3, 4]\n\nWhat is in the picture?"
    completion = client(llm_simulator).chat.completions.create(
        model="annotator-simulator-vision", messages=[{"role": "user", "content": prompt}], temperature=0.7, seed=3
    )
    answer = text_of(completion)
    assert "a dog on a sofa" in answer
    assert 1 <= sentences(answer) <= 3
    with pytest.raises(ValueError):
        json.loads(answer)


def test_plain_text_without_annotations_still_answers(llm_simulator):
    completion = client(llm_simulator).chat.completions.create(
        model="annotator-simulator-vision", messages=[{"role": "user", "content": "Hello?"}]
    )
    answer = text_of(completion)
    assert answer.startswith(("The image", "The picture"))
    assert completion.choices[0].finish_reason == "stop"


def test_json_object_follows_a_schema_given_in_the_prompt(llm_simulator):
    prompt = PROMPT + "\nAnswer with JSON matching this schema:\n```json\n" + json.dumps(DRESS_SCHEMA) + "\n```\n"
    completion = client(llm_simulator).chat.completions.create(
        model="annotator-simulator", messages=messages(prompt), response_format={"type": "json_object"}
    )
    assert problems(json.loads(text_of(completion)), DRESS_SCHEMA) == []

    inline = PROMPT + "\nThe schema is " + json.dumps(DRESS_SCHEMA) + " and nothing else."
    completion = client(llm_simulator).chat.completions.create(
        model="annotator-simulator", messages=messages(inline), response_format={"type": "json_object"}
    )
    assert problems(json.loads(text_of(completion)), DRESS_SCHEMA) == []


def test_json_object_without_a_schema_answers_in_an_object(llm_simulator):
    completion = client(llm_simulator).chat.completions.create(
        model="annotator-simulator",
        messages=[{"role": "user", "content": "- Caption: a red bus on a bridge\nDescribe it as JSON."}],
        response_format={"type": "json_object"},
    )
    data = json.loads(text_of(completion))
    assert list(data) == ["answer"]
    assert "a red bus on a bridge" in data["answer"]


def test_max_tokens_cuts_the_answer(llm_simulator):
    completion = ask_feedback(llm_simulator, max_tokens=10)
    assert completion.choices[0].finish_reason == "length"
    assert len(text_of(completion)) == 40
    assert usage_of(completion).completion_tokens == 10


# --- rate limit ----------------------------------------------------------------------------------


def test_own_rate_limit_answers_429_with_retry_after(llm_simulator):
    llm_simulator.configure(rpm=60)  # one a second, a burst of one
    results = [raw(llm_simulator, "POST", "/v1/chat/completions", chat_body()) for _ in range(5)]
    statuses = [status for status, _, _ in results]
    assert statuses[0] == 200
    assert statuses.count(429) >= 3
    _, headers, body = next(r for r in results if r[0] == 429)
    assert body["error"]["type"] == "rate_limit_exceeded"
    assert body["error"]["code"] == "rate_limit_exceeded"
    assert headers["retry-after"] == "1"
    wait_ms = int(headers["retry-after-ms"])
    assert 1 <= wait_ms <= 1000
    stats = llm_simulator.stats()
    assert stats["requests"] == 5
    assert stats["rate_limited"] == statuses.count(429)
    assert stats["completed"] == statuses.count(200)

    with pytest.raises(openai.RateLimitError) as caught:
        ask_feedback(llm_simulator)
    assert int(caught.value.response.headers["retry-after-ms"]) <= 1000
    time.sleep(int(caught.value.response.headers["retry-after-ms"]) / 1000 + 0.05)
    assert ask_feedback(llm_simulator).choices[0].finish_reason == "stop"  # honouring it gets through


def test_token_rate_limit_counts_prompt_tokens(llm_simulator):
    llm_simulator.configure(tpm=600)  # ten tokens a second; the prompt is ~100
    assert raw(llm_simulator, "POST", "/v1/chat/completions", chat_body())[0] == 200
    status, headers, _ = raw(llm_simulator, "POST", "/v1/chat/completions", chat_body())
    assert status == 429
    assert int(headers["retry-after"]) >= 5
    assert llm_simulator.stats()["rate_limited"] == 1


# --- faults --------------------------------------------------------------------------------------


def test_fault_429_sends_retry_after(llm_simulator):
    llm_simulator.configure(fault_429=1.0, retry_after=2)
    with pytest.raises(openai.RateLimitError) as caught:
        ask_feedback(llm_simulator)
    headers = caught.value.response.headers
    assert headers["retry-after"] == "2"
    assert headers["retry-after-ms"] == "2000"
    stats = llm_simulator.stats()
    assert stats["faults"]["429"] == 1
    assert stats["rate_limited"] == 0
    assert stats["completed"] == 0


def test_fault_5xx_gives_500_and_503(llm_simulator):
    llm_simulator.configure(fault_5xx=1.0)
    results = [raw(llm_simulator, "POST", "/v1/chat/completions", chat_body()) for _ in range(8)]
    assert {status for status, _, _ in results} == {500, 503}
    assert all(body["error"]["type"] == "server_error" for _, _, body in results)
    assert llm_simulator.stats()["faults"]["5xx"] == 8
    with pytest.raises(openai.InternalServerError):
        ask_feedback(llm_simulator)


def test_fault_hang_outlasts_the_client_timeout(llm_simulator):
    llm_simulator.configure(fault_hang=1.0, hang_seconds=10)
    started = time.monotonic()
    with pytest.raises(openai.APITimeoutError):
        client(llm_simulator, timeout=0.3).chat.completions.create(model="annotator-simulator", messages=messages())
    assert time.monotonic() - started < 10  # the client gave up before the hang ended
    assert llm_simulator.stats()["faults"]["hang"] == 1
    assert llm_simulator.stats()["in_flight"] == 1  # still sleeping on the server side


def test_fault_hang_ends_in_504(llm_simulator):
    llm_simulator.configure(fault_hang=1.0, hang_seconds=0.2)
    status, _, body = raw(llm_simulator, "POST", "/v1/chat/completions", chat_body())
    assert status == 504
    assert body["error"]["type"] == "server_error"


def test_stop_wakes_a_hanging_request():
    sim = SimulatorServer(fault_hang=1.0, hang_seconds=30).start()
    result: queue.Queue[int] = queue.Queue()

    def hang() -> None:
        try:
            result.put(raw(sim, "POST", "/v1/chat/completions", chat_body(), timeout=10)[0])
        except OSError:
            result.put(-1)

    thread = threading.Thread(target=hang)
    thread.start()
    deadline = time.monotonic() + 3
    while sim.stats()["in_flight"] == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    started = time.monotonic()
    sim.stop()
    thread.join(15)
    assert time.monotonic() - started < 15  # woken, not left to its 30 s hang
    assert result.get_nowait() in (504, -1)


def test_fault_malformed_is_never_valid_json(llm_simulator):
    llm_simulator.configure(fault_malformed=1.0)
    kinds = set()
    for i in range(12):
        content = text_of(ask_feedback(llm_simulator, PROMPT + str(i)))
        with pytest.raises(ValueError):
            json.loads(content)
        if "```json" in content:
            kinds.add("fenced")
            fenced = content.split("```json", 1)[1].split("```", 1)[0]
            assert problems(json.loads(fenced), DRESS_SCHEMA) == []
        elif content.lstrip().startswith("{"):
            kinds.add("trailing comma")
            assert re.search(r",\s*}\s*$", content)
        else:
            kinds.add("prose")
            assert "{" not in content
    assert kinds == {"fenced", "trailing comma", "prose"}
    assert llm_simulator.stats()["faults"]["malformed"] == 12


def test_fault_missing_field_drops_one_required_key(llm_simulator):
    llm_simulator.configure(fault_missing_field=1.0)
    completion = ask_feedback(llm_simulator)
    data = json.loads(text_of(completion))
    missing = [key for key in DRESS_SCHEMA["required"] if key not in data]
    assert len(missing) == 1
    assert len(data) == len(DRESS_SCHEMA["required"]) - 1
    assert completion.choices[0].finish_reason == "stop"


def test_fault_truncated_cuts_the_content(llm_simulator):
    whole = text_of(ask_feedback(llm_simulator))
    llm_simulator.configure(fault_truncated=1.0)
    completion = ask_feedback(llm_simulator)
    cut = text_of(completion)
    assert completion.choices[0].finish_reason == "length"
    assert 0 < len(cut) < len(whole)
    assert whole.startswith(cut)
    assert usage_of(completion).completion_tokens == math.ceil(len(cut) / 4)


def test_json_faults_spare_plain_text_requests(llm_simulator):
    llm_simulator.configure(fault_malformed=0.4, fault_missing_field=0.3, fault_truncated=0.3)
    completion = client(llm_simulator).chat.completions.create(model="annotator-simulator", messages=messages())
    assert completion.choices[0].finish_reason == "stop"
    assert "a dog on a sofa" in text_of(completion)
    assert sum(llm_simulator.stats()["faults"].values()) == 0


# --- errors, keys, control -----------------------------------------------------------------------


def test_bad_bodies_get_400_in_the_usual_shape(llm_simulator):
    status, _, body = raw(llm_simulator, "POST", "/v1/chat/completions", b"{not json")
    assert status == 400
    assert body["error"]["type"] == "invalid_request_error"
    assert set(body["error"]) == {"message", "type", "param", "code"}
    status, _, body = raw(llm_simulator, "POST", "/v1/chat/completions", {"model": "annotator-simulator"})
    assert (status, body["error"]["param"]) == (400, "messages")
    bad_part = chat_body()
    bad_part["messages"] = [{"role": "user", "content": [{"type": "audio", "data": "x"}]}]
    assert raw(llm_simulator, "POST", "/v1/chat/completions", bad_part)[0] == 400
    with pytest.raises(openai.BadRequestError):
        client(llm_simulator).chat.completions.create(model="annotator-simulator", messages=[])
    assert llm_simulator.stats()["bad_requests"] == 4


def test_unknown_paths_and_methods(llm_simulator):
    status, _, body = raw(llm_simulator, "GET", "/v1/embeddings")
    assert status == 404
    assert body["error"]["code"] == "unknown_url"
    status, headers, _ = raw(llm_simulator, "GET", "/v1/chat/completions")
    assert status == 405
    assert headers["allow"] == "POST"


def test_required_key(llm_simulator, capfd):
    secret = "sim-secret-key-4711"
    llm_simulator.configure(require_key=secret)
    with pytest.raises(openai.AuthenticationError) as caught:
        client(llm_simulator, key="wrong-key").chat.completions.create(model="annotator-simulator", messages=messages())
    assert caught.value.status_code == 401
    assert "wrong-key" not in caught.value.response.text
    assert client(llm_simulator, key=secret).models.list().data
    completion = client(llm_simulator, key=secret).chat.completions.create(
        model="annotator-simulator", messages=messages()
    )
    assert completion.choices[0].finish_reason == "stop"
    assert raw(llm_simulator, "GET", "/v1/models")[0] == 401
    status, _, config = raw(llm_simulator, "GET", "/_simulator/config")
    assert status == 200
    assert config["require_key"] is True
    assert secret not in json.dumps(config)
    assert secret not in json.dumps(llm_simulator.configure())
    assert llm_simulator.stats()["unauthorized"] == 2
    out, err = capfd.readouterr()
    assert secret not in out + err
    assert "wrong-key" not in out + err


def test_control_endpoints(llm_simulator):
    status, _, config = raw(llm_simulator, "POST", "/_simulator/config", {"latency_ms": 5, "fault_5xx": 0.25})
    assert status == 200
    assert config["latency_ms"] == 5
    assert config["fault_5xx"] == 0.25
    assert {"rpm", "tpm", "hang_seconds", "retry_after", "seed", "fault_truncated"} <= set(config)
    for bad in ({"bogus": 1}, {"fault_429": 2}, {"port": 1}, {"rpm": "fast"}):
        assert raw(llm_simulator, "POST", "/_simulator/config", bad)[0] == 400
    llm_simulator.configure(fault_5xx=0)
    raw(llm_simulator, "POST", "/v1/chat/completions", chat_body())
    status, _, stats = raw(llm_simulator, "GET", "/_simulator/stats")
    assert (status, stats["requests"], stats["completed"]) == (200, 1, 1)
    assert set(stats["faults"]) == {
        "429",
        "5xx",
        "hang",
        "malformed",
        "missing_field",
        "truncated",
        "html",
        "html_error",
    }
    status, _, stats = raw(llm_simulator, "POST", "/_simulator/reset")
    assert status == 200
    assert stats["requests"] == stats["completed"] == 0
    assert llm_simulator.stats()["requests"] == 0


def test_latency_and_concurrency(llm_simulator):
    llm_simulator.configure(latency_ms=150)
    started = time.monotonic()
    threads = [
        threading.Thread(target=raw, args=(llm_simulator, "POST", "/v1/chat/completions", chat_body()))
        for _ in range(6)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(5)
    elapsed = time.monotonic() - started
    assert elapsed >= 0.15  # the latency was applied
    stats = llm_simulator.stats()
    assert stats["completed"] == 6
    # In parallel, not one after another: the simulator's own count, not the wall clock (a busy
    # machine stretches the clock, never this count).
    assert stats["max_in_flight"] >= 3
    assert stats["in_flight"] == 0


def test_connections_are_kept_alive(llm_simulator):
    connection = http.client.HTTPConnection("127.0.0.1", llm_simulator.port, timeout=5)
    try:
        connection.request("GET", "/v1/models")
        first = connection.getresponse()
        first.read()
        sock = connection.sock
        connection.request("POST", "/v1/chat/completions", body=json.dumps(chat_body()))
        second = connection.getresponse()
        assert json.loads(second.read())["object"] == "chat.completion"
        assert connection.sock is sock
        assert first.getheader("Content-Length") is not None
    finally:
        connection.close()


# --- the command ---------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_the_module_serves_until_terminated():
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "simulator", "--port", str(port), "--latency-ms", "1", "--seed", "7"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: lines.put(process.stdout.readline() if process.stdout else ""), daemon=True).start()
    try:
        line = lines.get(timeout=30)
        assert line.strip() == f"LLM simulator on http://127.0.0.1:{port}/v1"
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        connection.request("GET", "/v1/models")
        response = connection.getresponse()
        assert response.status == 200
        assert json.loads(response.read())["data"][0]["id"] == "annotator-simulator"
        connection.close()
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
