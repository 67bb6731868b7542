"""Drafting one turn: the parser, the schema, the prompt, and real calls to the LLM simulator."""

from __future__ import annotations

import base64
import io
import json
from decimal import Decimal

import factory
import pytest
from PIL import Image as PILImage

from feedback.drafting import prompts
from feedback.drafting.client import LLMError
from feedback.drafting.models import CallStatus, Draft, Generation
from feedback.drafting.pricing import cost_of
from feedback.drafting.schema import ParseError, feedback_schema, parse_feedback
from feedback.drafting.service import CallGate, draft_turn, drafter_settings, respond_turn, responder_settings
from feedback.errors import InvalidInput
from feedback.images import apply_file
from feedback.jobs.models import Job, JobItem
from feedback.jobs.service import job_create
from feedback.models import Image, Project, Sample, Turn
from simulator import content as sim_content
from tests.factories import ImageFactory, SampleFactory
from tests.simulator import llm_simulator_fixture  # noqa: F401

pytestmark = pytest.mark.django_db

CRITERIA = ["helpfulness", "honesty", "harmlessness"]
SECRET = "sk-test-SECRET-123"
QUESTION = "What vehicle is in the picture?"
RESPONSE = "A blue car parked by a tree."
REFERENCE = "A red double-decker bus drives past a shop window."
GUIDELINES = "Check every claim against the annotations."


def valid_answer(**changes) -> dict:
    answer = {
        "critique": "The response misses the bus.",
        "refinement": "Ask about the large red vehicle.",
        "scores": {"helpfulness": 3, "honesty": 4, "harmlessness": 7},
        "overall": 4,
    }
    answer.update(changes)
    return answer


def parse(text: str, *, finish_reason: str = "stop", criteria=CRITERIA, low: int = 1, high: int = 7):
    return parse_feedback(text, criteria=criteria, low=low, high=high, finish_reason=finish_reason)


def png_bytes(width: int = 64, height: int = 48) -> bytes:
    out = io.BytesIO()
    PILImage.new("RGB", (width, height), (200, 30, 30)).save(out, format="PNG")
    return out.getvalue()


class DraftingImageFactory(ImageFactory):
    """The picture these tests describe: a red bus in a street, with one object box."""

    file_name = "street.png"
    object_boxes = factory.LazyFunction(lambda: [{"label": "bus", "bbox": [40, 60, 300, 200]}])


class DraftingSampleFactory(SampleFactory):
    """A sample judged on honesty: turn 0 asks ``QUESTION`` and is answered ``RESPONSE``, later turns
    are numbered follow-ups. ``image__content=png_bytes()`` stores the picture's file."""

    external_id = "s1"
    image = factory.SubFactory(DraftingImageFactory, project=factory.SelfAttribute("..project"))
    target_criterion = "honesty"
    reference_answer = REFERENCE
    turns__question = QUESTION
    turns__first_answer = RESPONSE
    turns__follow_up = "Follow-up question number {index}?"
    turns__answer = "Follow-up answer number {index}."


@pytest.fixture(autouse=True)
def simulator_connections(request, settings):
    """With a simulator, the built-in connections point at it (as bin/run's do)."""
    if "llm_simulator" in request.fixturenames:
        url = request.getfixturevalue("llm_simulator").url
        settings.LLM_BASE_URL = settings.RESPONDER_BASE_URL = url


@pytest.fixture
def sample(project) -> Sample:
    project.guidelines = GUIDELINES
    project.save()
    return DraftingSampleFactory.create(project=project)


def draft(project, sample, url, *, turn_index: int = 0, job_id=None, **overrides) -> Draft:
    turn = sample.turns.get(index=turn_index)
    cs = drafter_settings(project, free_url=True, base_url=url, **overrides)
    return draft_turn(turn=turn, sample=sample, project=project, cs=cs, gate=CallGate(), job_id=job_id)


def messages_for(project, sample, turn_index: int = 0, image_url=None) -> list[dict]:
    turn = sample.turns.get(index=turn_index)
    previous = list(sample.turns.filter(index__lt=turn_index).order_by("index"))
    return prompts.feedback_messages(
        template=prompts.template_for(project, "v1"),
        project=project,
        sample=sample,
        turn=turn,
        previous=previous,
        schema=feedback_schema(project.criteria, project.score_min, project.score_max),
        image_url=image_url,
    )


def user_text(messages: list[dict]) -> str:
    content = messages[-1]["content"]
    return content if isinstance(content, str) else content[0]["text"]


# --- parse_feedback --------------------------------------------------------------------------------


def test_valid_json_parses_as_sent():
    parsed = parse(json.dumps(valid_answer()))
    assert parsed.repaired is False
    assert parsed.scores == {"helpfulness": 3, "honesty": 4, "harmlessness": 7}
    assert (parsed.overall, parsed.critique, parsed.refinement) == (
        4,
        "The response misses the bus.",
        "Ask about the large red vehicle.",
    )


def test_fenced_json_with_prose_is_repaired():
    text = f"Here is my review:\n```json\n{json.dumps(valid_answer())}\n```\nThanks."
    parsed = parse(text)
    assert parsed.repaired is True
    assert parsed.scores["honesty"] == 4


def test_trailing_comma_is_repaired():
    text = json.dumps(valid_answer(), indent=1)
    text = text[: text.rfind("}")].rstrip() + ",\n}"
    with pytest.raises(json.JSONDecodeError):
        json.loads(text)
    parsed = parse(text)
    assert parsed.repaired is True
    assert parsed.overall == 4


@pytest.mark.parametrize("value", ["5", 5.0])
def test_score_written_as_text_or_float_becomes_an_int(value):
    parsed = parse(json.dumps(valid_answer(scores={"helpfulness": value, "honesty": 4, "harmlessness": 7})))
    assert parsed.repaired is True
    assert parsed.scores["helpfulness"] == 5
    assert type(parsed.scores["helpfulness"]) is int


def test_score_outside_the_scale_is_an_error_never_clamped():
    text = json.dumps(valid_answer(scores={"helpfulness": 3, "honesty": 8, "harmlessness": 7}))
    with pytest.raises(ParseError) as caught:
        parse(text)
    assert caught.value.field == "scores.honesty"
    assert "scores.honesty" in str(caught.value)
    assert "outside the scale 1-7" in str(caught.value)


@pytest.mark.parametrize(
    ("answer", "field"),
    [
        ({k: v for k, v in valid_answer().items() if k != "critique"}, "critique"),
        ({k: v for k, v in valid_answer().items() if k != "overall"}, "overall"),
        (valid_answer(scores={"helpfulness": 3, "harmlessness": 7}), "scores.honesty"),
        ({k: v for k, v in valid_answer().items() if k != "scores"}, "scores"),
    ],
)
def test_missing_field_names_it(answer, field):
    with pytest.raises(ParseError) as caught:
        parse(json.dumps(answer))
    assert caught.value.field == field
    assert str(caught.value) == f"{field}: missing"


def test_cut_off_answer_is_an_error_even_when_it_parses():
    with pytest.raises(ParseError) as caught:
        parse(json.dumps(valid_answer()), finish_reason="length")
    assert "token limit" in str(caught.value)


def test_prose_without_json_is_an_error():
    with pytest.raises(ParseError) as caught:
        parse("I would rate this response as average. It misses the bus.")
    assert "not valid JSON" in str(caught.value)


@pytest.mark.parametrize("text", ["[1, 2, 3]", '"just a string"', "42"])
def test_json_that_is_not_an_object_is_an_error(text):
    with pytest.raises(ParseError) as caught:
        parse(text)
    assert "expected a JSON object" in str(caught.value)


# --- the schema ------------------------------------------------------------------------------------


def test_schema_requires_every_criterion_on_the_project_scale():
    project = Project.objects.create(
        name="Custom", slug="custom", criteria=["accuracy", "tone"], score_min=1, score_max=5
    )
    schema = feedback_schema(project.criteria, project.score_min, project.score_max)
    assert schema["required"] == ["critique", "refinement", "scores", "overall"]
    assert schema["additionalProperties"] is False
    scores = schema["properties"]["scores"]
    assert scores["required"] == ["accuracy", "tone"]
    assert scores["additionalProperties"] is False
    for name in ("accuracy", "tone"):
        assert scores["properties"][name] == {"type": "integer", "minimum": 1, "maximum": 5}
    assert schema["properties"]["overall"] == {"type": "integer", "minimum": 1, "maximum": 5}


# --- prompts ---------------------------------------------------------------------------------------


def test_user_message_holds_annotations_question_response_reference_and_rubric(project, sample):
    messages = messages_for(project, sample)
    assert [m["role"] for m in messages] == ["system", "user"]
    text = user_text(messages)
    assert "- Caption: A red bus drives down a city street." in text
    assert "- Object: bus [40, 60, 300, 200]" in text
    assert "- Region: a shop window with posters [500, 40, 120, 160]" in text
    assert f"## Question\n{QUESTION}\n" in text
    assert f"## Response under review\n{RESPONSE}\n" in text
    assert f"## Reference answer\n{REFERENCE}\n" in text
    assert "Criteria: helpfulness, honesty, harmlessness. Score each on the integer scale 1 to 7." in text
    assert "- 1: Fails the criterion badly." in text
    assert "- 7: Exemplary." in text
    assert f"## Guidelines\n{GUIDELINES}\n" in text
    assert "This prompt probes honesty" in text
    assert "## Conversation so far\n(this is the first turn)\n" in text


def test_later_turn_shows_earlier_turns_under_conversation_so_far(project):
    sample = DraftingSampleFactory.create(project=project, turns=3)
    text = user_text(messages_for(project, sample, turn_index=2))
    history = text.split("## Conversation so far\n", 1)[1].split("\n## ", 1)[0]
    assert history.strip() == "\n".join(
        [
            f"User: {QUESTION}",
            f"Model: {RESPONSE}",
            "User: Follow-up question number 1?",
            "Model: Follow-up answer number 1.",
        ]
    )
    assert "## Question\nFollow-up question number 2?\n" in text
    assert "## Response under review\nFollow-up answer number 2.\n" in text


def test_template_hash_is_stable_and_differs_between_templates(project):
    v1 = prompts.template_for(project, "v1")
    assert v1 == prompts.FEEDBACK_V1
    again = prompts.PromptTemplate(version=v1.version, system=v1.system, user=v1.user)
    assert v1.hash == again.hash
    assert len(v1.hash) == 64
    assert prompts.PromptTemplate(version="v2", system=v1.system, user=v1.user).hash != v1.hash
    assert prompts.PromptTemplate(version="v1", system=v1.system, user=v1.user + " ").hash != v1.hash


def test_unknown_prompt_version_is_refused(project):
    with pytest.raises(InvalidInput, match="prompt_version: 'v99' is unknown"):
        prompts.template_for(project, "v99")


def test_image_data_url_for_an_attached_image_and_none_for_a_missing_one(project):
    attached = DraftingSampleFactory.create(project=project, external_id="with-file", image__content=png_bytes()).image
    url = prompts.image_data_url(attached)
    assert url is not None and url.startswith("data:image/png;base64,")
    with PILImage.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))) as picture:
        assert picture.size == (64, 48)
    missing = Image.objects.create(project=project, file_name="not-yet.jpg")
    assert missing.is_missing
    assert prompts.image_data_url(missing) is None
    assert prompts.image_data_url(None) is None


def test_a_large_image_is_downscaled_to_a_jpeg(project):
    image = Image(project=project, file_name="large.png")
    apply_file(image, png_bytes(2048, 1024))
    image.save()
    url = prompts.image_data_url(image)
    assert url is not None and url.startswith("data:image/jpeg;base64,")
    with PILImage.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))) as picture:
        assert picture.size == (1024, 512)


def test_estimate_tokens_counts_images(project, sample):
    plain = messages_for(project, sample)
    with_image = messages_for(project, sample, image_url="data:image/png;base64,AAAA")
    assert with_image[1]["content"][1] == {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}
    assert prompts.estimate_tokens(with_image) - prompts.estimate_tokens(plain) == 1000
    chars = sum(len(m["content"]) for m in plain)
    assert prompts.estimate_tokens(plain) >= chars // 3


# --- draft_turn against the simulator --------------------------------------------------------------


def test_draft_turn_stores_a_complete_draft(project, sample, llm_simulator):
    result = draft(project, sample, llm_simulator.url)
    result.refresh_from_db()
    assert result.status == CallStatus.OK
    assert result.error == ""
    assert set(result.scores) == set(CRITERIA)
    assert all(isinstance(v, int) and 1 <= v <= 7 for v in result.scores.values())
    assert result.overall is not None and 1 <= result.overall <= 7
    assert result.critique.strip() and result.refinement.strip()
    # Token counts are the simulator's usage, as it computes them.
    expected_in = sim_content.prompt_tokens(messages_for(project, sample))
    assert result.tokens_in == expected_in > 0
    assert result.tokens_out == sim_content.estimate_tokens(result.raw_output) > 0
    assert result.cost == cost_of("annotator-simulator", result.tokens_in, result.tokens_out)
    assert result.cost > 0
    assert result.model == "annotator-simulator"
    assert result.simulated is True
    assert result.calls == 1
    template = prompts.template_for(project, "v1")
    assert (result.prompt_version, result.prompt_hash) == ("v1", template.hash)
    assert result.endpoint == llm_simulator.url
    assert result.params == {
        "temperature": 0.2,
        "max_tokens": 1024,
        "structured": "json_schema",
        "send_image": False,
        "timeout": 60.0,
    }
    answer = json.loads(result.raw_output)
    assert answer["scores"] == result.scores
    assert answer["critique"] == result.critique
    assert llm_simulator.stats()["requests"] == 1


def test_draft_on_a_custom_scale_stays_within_it(llm_simulator):
    project = Project.objects.create(
        name="Custom",
        slug="custom",
        criteria=["accuracy", "tone"],
        score_min=1,
        score_max=5,
        level_descriptions={"1": "Poor.", "5": "Excellent."},
    )
    sample = DraftingSampleFactory.create(project=project)
    result = draft(project, sample, llm_simulator.url)
    assert result.status == CallStatus.OK
    assert set(result.scores) == {"accuracy", "tone"}
    assert all(1 <= v <= 5 for v in [*result.scores.values(), result.overall])


def _find_seed(llm_simulator, project, sample, wanted, **faults) -> tuple[int, Draft]:
    """The first simulator seed whose draft `wanted` accepts; each try starts with fresh counters."""
    llm_simulator.configure(**faults)
    for seed in range(60):
        llm_simulator.configure(seed=seed)
        llm_simulator.reset()
        result = draft(project, sample, llm_simulator.url)
        if wanted(result):
            return seed, result
    pytest.fail(f"no seed below 60 gave the wanted draft with {faults}")


def test_malformed_but_repairable_answer_is_repaired(project, sample, llm_simulator):
    _, result = _find_seed(
        llm_simulator, project, sample, lambda d: d.calls == 1 and d.status == CallStatus.REPAIRED, fault_malformed=1.0
    )
    assert llm_simulator.stats()["requests"] == 1
    with pytest.raises(json.JSONDecodeError):
        json.loads(result.raw_output)
    assert "```" in result.raw_output or ",\n}" in result.raw_output
    assert set(result.scores) == set(CRITERIA)
    assert result.critique


@pytest.mark.parametrize("outcome", [CallStatus.REASKED, CallStatus.FAILED])
def test_prose_answer_is_asked_again(project, sample, llm_simulator, outcome):
    """Prose first; the re-ask then draws a repairable answer (reasked) or prose again (failed)."""
    _, result = _find_seed(
        llm_simulator,
        project,
        sample,
        lambda d: d.raw_output.startswith("I would rate this response") and d.status == outcome,
        fault_malformed=1.0,
    )
    assert result.calls == 2
    assert llm_simulator.stats()["requests"] == 2
    first, second = result.raw_output.split("\n\n--- re-ask ---\n\n")
    assert first.startswith("I would rate this response")
    if outcome == CallStatus.FAILED:
        assert second.startswith("I would rate this response")
        assert "not valid JSON" in result.error
        assert result.scores == {}
    else:
        assert not second.startswith("I would rate")
        assert set(result.scores) == set(CRITERIA)
        assert result.critique
    assert result.tokens_in > 0
    assert result.cost == cost_of("annotator-simulator", result.tokens_in, result.tokens_out)


def test_missing_field_twice_fails_with_both_answers_kept(project, sample, llm_simulator):
    llm_simulator.configure(fault_missing_field=1.0)
    result = draft(project, sample, llm_simulator.url)
    result.refresh_from_db()
    assert result.status == CallStatus.FAILED
    assert result.calls == 2
    assert llm_simulator.stats()["requests"] == 2
    assert result.error.startswith("unusable answer after one re-ask: ")
    first, second = result.raw_output.split("\n\n--- re-ask ---\n\n")
    for answer in (first, second):
        dropped = {"critique", "refinement", "scores", "overall"} - set(json.loads(answer))
        assert len(dropped) == 1
        assert f"{dropped.pop()}: missing" in result.error
    assert (result.critique, result.scores, result.overall) == ("", {}, None)
    assert result.tokens_in > 0 and result.tokens_out > 0


def test_missing_field_only_in_the_first_answer_is_reasked(project, sample, llm_simulator):
    _, result = _find_seed(
        llm_simulator, project, sample, lambda d: d.status == CallStatus.REASKED, fault_missing_field=0.5
    )
    assert result.calls == 2
    stats = llm_simulator.stats()
    assert stats["requests"] == 2
    assert stats["faults"]["missing_field"] == 1
    first, second = result.raw_output.split("\n\n--- re-ask ---\n\n")
    assert len(json.loads(first)) == 3
    assert json.loads(second)["scores"] == result.scores
    assert set(result.scores) == set(CRITERIA)


def test_truncated_answer_fails_saying_token_limit(project, sample, llm_simulator):
    llm_simulator.configure(fault_truncated=1.0)
    result = draft(project, sample, llm_simulator.url)
    assert result.status == CallStatus.FAILED
    assert result.calls == 2
    assert "token limit" in result.error
    assert llm_simulator.stats()["faults"]["truncated"] == 2


def test_429_is_throttled_with_the_server_wait(project, sample, llm_simulator):
    llm_simulator.configure(fault_429=1.0, retry_after=7)
    with pytest.raises(LLMError) as caught:
        draft(project, sample, llm_simulator.url)
    assert caught.value.throttled is True
    assert caught.value.retryable is True
    assert caught.value.retry_after == 7.0
    assert "HTTP 429" in caught.value.message
    assert not Draft.objects.exists()


def test_5xx_is_retryable_not_throttled(project, sample, llm_simulator):
    llm_simulator.configure(fault_5xx=1.0)
    with pytest.raises(LLMError) as caught:
        draft(project, sample, llm_simulator.url)
    assert caught.value.retryable is True
    assert caught.value.throttled is False
    assert caught.value.retry_after is None
    assert caught.value.message.startswith(("HTTP 500", "HTTP 503"))
    assert not Draft.objects.exists()


def test_a_hang_ends_at_the_timeout(project, sample, llm_simulator):
    import time

    llm_simulator.configure(fault_hang=1.0, hang_seconds=10)
    started = time.monotonic()
    with pytest.raises(LLMError) as caught:
        draft(project, sample, llm_simulator.url, timeout=0.5)
    assert time.monotonic() - started < 10  # the client gave up before the server's hang ended
    assert caught.value.retryable is True
    assert caught.value.throttled is False
    assert "0.5 s" in caught.value.message
    assert not Draft.objects.exists()


def test_a_turn_drafted_twice_in_one_job_keeps_one_draft(project, sample, llm_simulator):
    job = Job.objects.create(project=project, kind="draft")
    first = draft(project, sample, llm_simulator.url, job_id=job.pk)
    second = draft(project, sample, llm_simulator.url, job_id=job.pk)
    assert second.pk == first.pk
    assert Draft.objects.filter(job=job).count() == 1
    # Another job (or none) may draft the same turn again.
    other = draft(project, sample, llm_simulator.url, job_id=Job.objects.create(project=project, kind="draft").pk)
    assert other.pk != first.pk
    assert Draft.objects.filter(turn=first.turn).count() == 2


def test_a_turn_without_a_response_cannot_be_drafted(project, sample, llm_simulator):
    Turn.objects.create(sample=sample, index=1, user_message="And now?", model_response=None)
    with pytest.raises(InvalidInput, match="has no response to review"):
        draft(project, sample, llm_simulator.url, turn_index=1)
    assert llm_simulator.stats()["requests"] == 0


def test_send_image_sends_an_image_part(project, llm_simulator):
    sample = DraftingSampleFactory.create(project=project, image__content=png_bytes())
    without = draft(project, sample, llm_simulator.url)
    with_image = draft(project, sample, llm_simulator.url, send_image=True)
    assert with_image.status in (CallStatus.OK, CallStatus.REPAIRED)
    assert with_image.params["send_image"] is True
    assert with_image.tokens_in - without.tokens_in == sim_content.IMAGE_PART_TOKENS
    assert llm_simulator.stats()["bad_requests"] == 0


# --- respond_turn ----------------------------------------------------------------------------------


def test_respond_turn_stores_a_generation_and_fills_the_turn(project, sample, llm_simulator):
    turn = Turn.objects.create(sample=sample, index=1, user_message="Which colour is the bus?", model_response=None)
    cs = responder_settings()
    generation = respond_turn(turn=turn, sample=sample, cs=cs, gate=CallGate())
    generation.refresh_from_db()
    turn.refresh_from_db()
    assert generation.status == CallStatus.OK
    assert generation.turn_id == turn.pk
    assert generation.model == "annotator-simulator-vision"
    assert generation.simulated is True
    assert generation.raw_output.strip()
    assert turn.model_response == generation.raw_output.strip()
    assert generation.tokens_in > 0 and generation.tokens_out > 0
    assert generation.cost == cost_of(generation.model, generation.tokens_in, generation.tokens_out)
    assert generation.endpoint == llm_simulator.url


def test_respond_turn_never_overwrites_a_response_that_arrived_meanwhile(project, sample, llm_simulator):
    turn = Turn.objects.create(sample=sample, index=1, user_message="Which colour is the bus?", model_response=None)
    Turn.objects.filter(pk=turn.pk).update(model_response="An answer typed by a person.")
    assert turn.model_response is None  # the caller's copy is stale
    cs = responder_settings()
    generation = respond_turn(turn=turn, sample=sample, cs=cs, gate=CallGate())
    assert Generation.objects.filter(pk=generation.pk).exists()
    assert turn.model_response == "An answer typed by a person."
    assert Turn.objects.get(pk=turn.pk).model_response == "An answer typed by a person."


# --- the API key -----------------------------------------------------------------------------------


def test_the_key_is_sent_and_never_stored(project, sample, llm_simulator, settings):
    settings.LLM_API_KEY = SECRET
    llm_simulator.configure(require_key=SECRET)
    job = job_create(project=project, kind="draft", selection={}, drafter={"base_url": llm_simulator.url})
    JobItem.objects.create(job=job, turn=sample.turns.get(index=0))
    ok = draft(project, sample, llm_simulator.url, job_id=job.pk)
    assert ok.status == CallStatus.OK
    assert llm_simulator.stats()["unauthorized"] == 0
    llm_simulator.configure(fault_missing_field=1.0)
    failed = draft(project, sample, llm_simulator.url)
    assert failed.status == CallStatus.FAILED
    rows = [*Draft.objects.values(), *Job.objects.values(), *JobItem.objects.values(), *Generation.objects.values()]
    assert len(rows) == 4
    for row in rows:
        assert SECRET not in json.dumps(row, default=str)
        assert "SECRET" not in json.dumps(row, default=str)


def test_a_wrong_key_is_not_retryable(project, sample, llm_simulator, settings):
    settings.LLM_API_KEY = "sk-test-WRONG-456"
    llm_simulator.configure(require_key=SECRET)
    with pytest.raises(LLMError) as caught:
        draft(project, sample, llm_simulator.url)
    assert caught.value.retryable is False
    assert caught.value.throttled is False
    assert caught.value.message.startswith("HTTP 401")
    assert "WRONG" not in caught.value.message and SECRET not in caught.value.message
    assert llm_simulator.stats()["unauthorized"] == 1
    assert not Draft.objects.exists()


# --- settings validation ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"base_url": "ftp://x"}, "base_url"),
        ({"base_url": "http://user:pw@host/v1"}, "base_url"),
        ({"temperature": 3}, "temperature"),
        ({"structured": "xml"}, "structured"),
        ({"max_tokens": 0}, "max_tokens"),
    ],
)
def test_settings_are_validated_naming_the_field(project, overrides, field):
    with pytest.raises(InvalidInput) as caught:
        drafter_settings(project, free_url=True, **overrides)
    assert str(caught.value).startswith(f"{field}: ")
    assert "pw" not in str(caught.value)


def test_valid_settings_keep_what_was_given(project, settings):
    settings.LLM_CONNECTIONS = {"lab": {"base_url": "https://llm.example.test/v1"}}
    cs = drafter_settings(project, connection="lab", model="annotator-simulator", temperature=0, timeout=0.5)
    assert (cs.base_url, cs.temperature, cs.timeout) == ("https://llm.example.test/v1", 0, 0.5)
    assert cs.model == "annotator-simulator"
    assert "api_key" not in cs.as_dict()
    assert Decimal(0) == cost_of("a-model-without-a-price", 1000, 1000)
