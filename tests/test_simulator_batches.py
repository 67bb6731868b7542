"""The simulator's Batch API over real sockets, with the real client: files, batches, delay,
failing lines, cancel, validation and bounds."""

from __future__ import annotations

import io
import json
import time
from typing import Any

import openai
import pytest
from openai.types import Batch

from simulator import SimulatorServer
from tests.simulator import llm_simulator_fixture  # noqa: F401
from tests.test_simulator import PROMPT, chat_body, client, raw

FINAL = ("completed", "failed", "expired", "cancelled")


def jsonl(bodies: list[dict[str, Any]], *, ids: list[str] | None = None) -> bytes:
    lines = [
        json.dumps(
            {
                "custom_id": (ids or [])[i] if ids else f"item-{i}",
                "method": "POST",
                "url": "/v1/chat/completions",
                "body": b,
            }
        )
        for i, b in enumerate(bodies)
    ]
    return ("\n".join(lines) + "\n").encode()


def upload(api: openai.OpenAI, data: bytes, purpose: Any = "batch") -> str:
    return api.files.create(file=("requests.jsonl", io.BytesIO(data), "application/jsonl"), purpose=purpose).id


def start(api: openai.OpenAI, data: bytes) -> Batch:
    return api.batches.create(input_file_id=upload(api, data), endpoint="/v1/chat/completions", completion_window="24h")


def wait(api: openai.OpenAI, batch_id: str, timeout: float = 20.0) -> Batch:
    end = time.monotonic() + timeout
    batch = api.batches.retrieve(batch_id)
    while batch.status not in FINAL:
        assert time.monotonic() < end, f"batch still {batch.status}"
        time.sleep(0.05)
        batch = api.batches.retrieve(batch_id)
    return batch


def lines_of(api: openai.OpenAI, file_id: str | None) -> list[dict[str, Any]]:
    if file_id is None:
        return []
    with api.files.with_streaming_response.content(file_id) as response:
        return [json.loads(line) for line in response.iter_lines() if line]


def prompts(n: int) -> list[dict[str, Any]]:
    return [chat_body(PROMPT.replace("sleeping", f"sleeping ({i})")) for i in range(n)]


def test_a_batch_answers_every_line_as_the_live_endpoint_does(llm_simulator):
    api = client(llm_simulator)
    bodies = prompts(5)
    batch = wait(api, start(api, jsonl(bodies)).id)
    assert batch.status == "completed"
    assert batch.request_counts is not None
    assert (batch.request_counts.total, batch.request_counts.completed, batch.request_counts.failed) == (5, 5, 0)
    assert batch.error_file_id is None
    out = {line["custom_id"]: line for line in lines_of(api, batch.output_file_id)}
    assert sorted(out) == [f"item-{i}" for i in range(5)]
    for i, body in enumerate(bodies):
        status, _, live = raw(llm_simulator, "POST", "/v1/chat/completions", json.dumps(body).encode())
        assert status == 200
        line = out[f"item-{i}"]
        assert line["response"]["status_code"] == 200 and line["error"] is None
        answer = line["response"]["body"]
        assert answer["system_fingerprint"] == "annotator-simulator"
        assert answer["choices"][0]["message"]["content"] == live["choices"][0]["message"]["content"]
        assert answer["usage"]["prompt_tokens"] == live["usage"]["prompt_tokens"]


def test_a_batch_completes_no_sooner_than_its_delay(llm_simulator):
    llm_simulator.configure(batch_delay_s=1.0)
    api = client(llm_simulator)
    created = start(api, jsonl(prompts(2)))
    time.sleep(0.3)
    middle = api.batches.retrieve(created.id)
    assert middle.status == "in_progress"
    assert middle.output_file_id is None
    done = wait(api, created.id)
    assert done.status == "completed"
    assert done.completed_at is not None and done.completed_at >= created.created_at + 1


def test_failing_lines_go_to_the_error_file(llm_simulator):
    llm_simulator.configure(batch_fail_rate=0.5, seed=3)
    api = client(llm_simulator)
    batch = wait(api, start(api, jsonl(prompts(40))).id)
    assert batch.request_counts is not None
    done, failed = lines_of(api, batch.output_file_id), lines_of(api, batch.error_file_id)
    assert len(done) == batch.request_counts.completed
    assert len(failed) == batch.request_counts.failed
    assert 0 < len(failed) < 40 and len(done) + len(failed) == 40
    assert {line["custom_id"] for line in done}.isdisjoint({line["custom_id"] for line in failed})
    assert {line["response"]["status_code"] for line in failed} == {500}
    assert all(line["response"]["body"]["error"]["type"] == "server_error" for line in failed)
    stats = llm_simulator.stats()
    assert stats["batch"]["failed_lines"] == len(failed) and stats["batch"]["lines"] == len(done)
    assert stats["requests"] == 0, "batch lines are not live requests"


def test_every_line_failing_leaves_no_output_file(llm_simulator):
    llm_simulator.configure(batch_fail_rate=1)
    api = client(llm_simulator)
    batch = wait(api, start(api, jsonl(prompts(3))).id)
    assert batch.status == "completed" and batch.output_file_id is None
    assert len(lines_of(api, batch.error_file_id)) == 3


def test_content_faults_apply_to_lines_too(llm_simulator):
    llm_simulator.configure(fault_malformed=1.0)
    api = client(llm_simulator)
    batch = wait(api, start(api, jsonl(prompts(3))).id)
    for line in lines_of(api, batch.output_file_id):
        text = line["response"]["body"]["choices"][0]["message"]["content"]
        with pytest.raises(ValueError):
            json.loads(text)


def test_cancel_stops_a_batch(llm_simulator):
    llm_simulator.configure(batch_delay_s=30)
    api = client(llm_simulator)
    created = start(api, jsonl(prompts(2)))
    cancelled = api.batches.cancel(created.id)
    assert cancelled.status in ("cancelling", "cancelled")
    done = wait(api, created.id, timeout=5)
    assert done.status == "cancelled" and done.cancelled_at is not None
    assert llm_simulator.stats()["batch"]["cancelled"] == 1
    again = api.batches.cancel(created.id)  # cancelling a cancelled batch is harmless
    assert again.status == "cancelled"


def test_a_completed_batch_cannot_be_cancelled(llm_simulator):
    api = client(llm_simulator)
    batch = wait(api, start(api, jsonl(prompts(1))).id)
    with pytest.raises(openai.ConflictError):
        api.batches.cancel(batch.id)


def test_an_uploaded_file_reads_back_byte_for_byte_and_can_be_deleted(llm_simulator):
    api = client(llm_simulator)
    data = jsonl(prompts(3)).replace(b"\n", b"\r\n")
    file_id = upload(api, data)
    meta = api.files.retrieve(file_id)
    assert (meta.bytes, meta.purpose, meta.filename) == (len(data), "batch", "requests.jsonl")
    assert api.files.content(file_id).content == data
    assert api.files.delete(file_id).deleted
    with pytest.raises(openai.NotFoundError):
        api.files.retrieve(file_id)
    assert llm_simulator.stats()["batch"]["files_held"] == 0


def test_the_list_finds_a_batch_by_its_input_file(llm_simulator):
    api = client(llm_simulator)
    first = start(api, jsonl(prompts(1)))
    second = start(api, jsonl(prompts(1)))
    page = api.batches.list(limit=1)
    assert [b.id for b in page.data] == [second.id]
    assert page.has_more
    rest = api.batches.list(limit=10, after=second.id)
    assert [b.id for b in rest.data] == [first.id] and rest.data[0].input_file_id == first.input_file_id


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (jsonl(prompts(2), ids=["same", "same"]), "Duplicate custom_id"),
        (b'{"custom_id": "a", "method": "POST", "url": "/v1/embeddings", "body": {"model": "m"}}\n', "POST to"),
        (b"not json\n", "not valid JSON"),
        (jsonl([chat_body(), {**chat_body(), "model": "other"}]), "same model"),
    ],
)
def test_a_bad_input_file_fails_the_batch_naming_the_line(llm_simulator, data, message):
    api = client(llm_simulator)
    batch = wait(api, start(api, data).id)
    assert batch.status == "failed"
    assert batch.errors is not None and batch.errors.data
    error = batch.errors.data[0]
    assert message in (error.message or "") and error.line is not None


def test_bad_requests_are_refused_naming_the_field(llm_simulator):
    api = client(llm_simulator)
    with pytest.raises(openai.BadRequestError, match="purpose"):
        upload(api, jsonl(prompts(1)), purpose="fine-tune")
    file_id = upload(api, jsonl(prompts(1)))
    with pytest.raises(openai.BadRequestError, match="completions"):
        api.batches.create(input_file_id=file_id, endpoint="/v1/embeddings", completion_window="24h")
    with pytest.raises(openai.NotFoundError):
        api.batches.create(input_file_id="file-nope", endpoint="/v1/chat/completions", completion_window="24h")
    with pytest.raises(openai.NotFoundError):
        api.batches.retrieve("batch-nope")
    status, _, body = raw(llm_simulator, "GET", "/v1/batches?limit=1000", b"")
    assert status == 400 and body["error"]["param"] == "limit"
    status, _, body = raw(llm_simulator, "POST", "/_simulator/config", b'{"batch_fail_rate": 2}')
    assert status == 400 and "batch_fail_rate" in body["error"]["message"]


def test_the_batch_api_demands_the_key_when_one_is_required(llm_simulator):
    llm_simulator.configure(require_key="secret-key")
    with pytest.raises(openai.AuthenticationError):
        upload(client(llm_simulator, key="wrong"), jsonl(prompts(1)))
    with pytest.raises(openai.AuthenticationError):
        client(llm_simulator, key="wrong").batches.list()
    assert upload(client(llm_simulator, key="secret-key"), jsonl(prompts(1)))


def test_an_upload_past_the_bound_is_refused(llm_simulator, monkeypatch):
    import simulator.batches

    monkeypatch.setattr(simulator.batches, "MAX_FILE_BYTES", 1000)
    api = client(llm_simulator)
    with pytest.raises(openai.APIStatusError) as caught:
        upload(api, jsonl(prompts(5)))
    assert caught.value.status_code == 413
    assert llm_simulator.stats()["batch"]["files_held"] == 0


def test_config_takes_the_batch_settings(llm_simulator: SimulatorServer):
    config = llm_simulator.configure(batch_delay_s=2.5, batch_fail_rate=0.01)
    assert (config["batch_delay_s"], config["batch_fail_rate"]) == (2.5, 0.01)
