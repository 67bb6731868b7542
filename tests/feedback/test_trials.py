"""Trials: a set and two or more variants drafted through the drafting path on the simulator, apart
from the project's drafts and its review queue; each variant's figures against the human finals;
promoting the winner; bounds naming the field; the pages, the API and the roles."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from feedback.drafting import prompts, versions
from feedback.drafting.models import Draft
from feedback.errors import Conflict, InvalidInput
from feedback.jobs.models import Job
from feedback.models import Project, Turn
from feedback.review.models import Assignment, QueueItem, Revision
from feedback.trials import selectors, service
from feedback.trials.models import Trial, TrialDraft
from quality.trials import trial_figures
from tests.conftest import make_user, token_client
from tests.factories import SampleFactory
from tests.quality.quality_helpers import Review, SamplePlan, TurnPlan, build, reviewers
from tests.simulator import llm_simulator_fixture  # noqa: F401

pytestmark = pytest.mark.django_db

V1 = prompts.FEEDBACK_V1
STRICT = V1.user.replace("Review the response under review.", "Judge the answer below, strictly.")


@pytest.fixture(autouse=True)
def fresh_cache():
    prompts.clear_cache()
    yield
    prompts.clear_cache()


@pytest.fixture
def simulated(llm_simulator, settings, eager_tasks):
    settings.LLM_BASE_URL = settings.RESPONDER_BASE_URL = llm_simulator.url
    return llm_simulator


def reviewed(project: Project, count: int) -> list[Any]:
    """``count`` samples of two turns, drafted and reviewed through the review path: the first turn
    edited (its final scores differ from the draft's), the second accepted."""
    (ann,) = reviewers(project, "ann")
    draft = {"helpfulness": 5, "honesty": 6, "harmlessness": 7}
    edited = {"helpfulness": 3, "honesty": 6, "harmlessness": 6}
    plan = [TurnPlan(draft, decision="edited", final=edited), TurnPlan(draft)]
    return build(project, [SamplePlan([Review(ann, plan)]) for _ in range(count)])


def v2(project: Project):
    return versions.prompt_version_create(project=project, system=V1.system, user=STRICT, note="stricter")


def run(callbacks, **kwargs: Any) -> Trial:
    """Create a trial and run its tasks (eagerly, once the transaction commits)."""
    with callbacks(execute=True):
        trial = service.trial_create(**kwargs)
    trial.refresh_from_db()
    return trial


TWO = [{"prompt_version": "v1"}, {"prompt_version": "v2", "temperature": 0.7}]


def test_two_variants_on_50_reviewed_samples_show_their_figures_and_never_reach_the_review_queue(
    project, admin_user, simulated, django_capture_on_commit_callbacks
):
    reviewed(project, 50)
    v2(project)
    drafts_before = Draft.objects.count()
    queue_before = list(QueueItem.objects.order_by("pk").values_list("pk", "open", "reviews_done", "holding"))
    assignments_before = Assignment.objects.count()
    revisions_before = Revision.objects.count()

    trial = run(
        django_capture_on_commit_callbacks,
        project=project,
        user=admin_user,
        set={"kind": "reviewed", "n": 50, "seed": 3},
        variants=TWO,
    )

    assert trial.state == Trial.State.COMPLETED
    assert len(trial.sample_ids) == 50
    rows = TrialDraft.objects.filter(variant__trial=trial)
    assert rows.count() == 2 * 100 and not rows.exclude(state=TrialDraft.State.DONE).exists()
    by_version = dict(rows.values_list("variant__position", "prompt_version").distinct())
    assert by_version == {0: "v1", 1: "v2"}
    assert set(rows.values_list("prompt_hash", flat=True)) == {
        v.sha256 for v in versions.versions_of(project).filter(name__in=["v1", "v2"])
    }
    # Nothing a trial drafts is a project draft, a queue change, an assignment or a revision.
    assert Draft.objects.count() == drafts_before
    assert list(QueueItem.objects.order_by("pk").values_list("pk", "open", "reviews_done", "holding")) == queue_before
    assert (Assignment.objects.count(), Revision.objects.count()) == (assignments_before, revisions_before)

    figures = trial_figures(trial)
    assert [v["label"] for v in figures["variants"]] == ["A", "B"]
    for variant in figures["variants"]:
        assert variant["done"] == variant["drafts"] == 100
        assert variant["gold"] == 100  # every turn has a human final
        assert variant["failure_rate"]["value"] == 0.0
        assert float(variant["cost"]) > 0 and variant["tokens_in"] > 0 and variant["tokens_out"] > 0
        assert variant["latency_ms"]["p50"] is not None and variant["latency_ms"]["p95"] >= variant["latency_ms"]["p50"]
        assert variant["agreement"]["within_1"]["n"] == 100 * 3
        assert variant["critique_distance"]["n"] == 100
    b = figures["variants"][1]
    assert (b["prompt_version"], b["temperature"]) == ("v2", 0.7)
    # The cost is the sum of the rows' costs, the gold the pairs counted by hand.
    assert float(sum(r.cost for r in rows.filter(variant__position=0))) == pytest.approx(
        float(figures["variants"][0]["cost"])
    )


def test_the_agreement_figures_are_those_of_quality_stats_on_hand_made_pairs(project, admin_user, settings):
    """Trial drafts written by hand: the figures are the confusion table's kappa and ±1 and the mean
    word edit distance, as quality.stats computes them."""
    from quality import stats

    samples = reviewed(project, 2)
    trial = service.trial_create(
        project=project,
        user=admin_user,
        set={"kind": "samples", "samples": [s.external_id for s in samples]},
        variants=[{"temperature": 0.1}, {"temperature": 0.9}],
    )
    turns = list(Turn.objects.filter(sample__in=samples).order_by("sample_id", "index"))
    finals = selectors.human_finals([t.pk for t in turns])
    assert len(finals) == 4
    a_scores = [
        {"helpfulness": 3, "honesty": 6, "harmlessness": 6},
        {"helpfulness": 1, "honesty": 1, "harmlessness": 1},
    ]
    for row in TrialDraft.objects.filter(variant__trial=trial).select_related("variant"):
        final = finals[row.turn_id]
        if row.variant.position == 0:
            scores = a_scores[turns.index(row.turn) % 2]
            critique = final.critique
        else:
            scores, critique = dict(final.scores), final.critique + " and more words"
        TrialDraft.objects.filter(pk=row.pk).update(
            state=TrialDraft.State.DONE,
            status="ok",
            scores=scores,
            critique=critique,
            refinement=final.refinement,
            latency_ms=100 + row.pk % 7,
            calls=1,
        )
    figures = {v["label"]: v for v in trial_figures(trial)["variants"]}
    pairs_a = []
    for turn in turns:
        scores = a_scores[turns.index(turn) % 2]
        pairs_a += [(scores[c], finals[turn.pk].scores[c]) for c in project.criteria]
    labels = list(range(project.score_min, project.score_max + 1))
    table = [[sum(1 for d, f in pairs_a if (d, f) == (r, c)) for c in labels] for r in labels]
    expected = stats.agreement(table, labels, seed=0, resamples=500)
    assert figures["A"]["agreement"]["kappa"] == expected["kappa"]
    assert figures["A"]["agreement"]["within_1"] == expected["within_1"]
    assert figures["A"]["critique_distance"]["value"] == 0.0
    assert figures["B"]["agreement"]["exact"]["value"] == 1.0
    words = [len(finals[t.pk].critique.split()) for t in turns]
    expected_b = stats.mean([3 / (n + 3) for n in words])
    assert figures["B"]["critique_distance"]["value"] == expected_b["value"]


def test_failures_and_repairs_are_counted_per_variant(
    project, admin_user, simulated, django_capture_on_commit_callbacks
):
    SampleFactory.create_numbered(6, project=project, turns=1)
    simulated.configure(fault_html=1.0)  # prose, not JSON: re-asked once, then failed
    broken = run(
        django_capture_on_commit_callbacks,
        project=project,
        user=admin_user,
        set={"kind": "random", "n": 6},
        variants=[{"temperature": 0.2}, {"temperature": 0.3}],
    )
    assert broken.state == Trial.State.COMPLETED
    for variant in trial_figures(broken)["variants"]:
        assert (variant["failed"], variant["done"]) == (6, 0)
        assert variant["failure_rate"]["value"] == 1.0 and variant["failure_rate"]["n"] == 6
        assert variant["latency_ms"]["p50"] is None
    failed = TrialDraft.objects.filter(variant__trial=broken).first()
    assert failed is not None and "unusable answer" in failed.error and failed.calls == 2

    simulated.configure(fault_html=0.0, fault_malformed=1.0)  # broken JSON: repaired, re-asked or failed
    mended = run(
        django_capture_on_commit_callbacks,
        project=project,
        user=admin_user,
        set={"kind": "random", "n": 6},
        variants=[{"temperature": 0.2}, {"temperature": 0.3}],
    )
    for variant, fig in zip(mended.variants.all(), trial_figures(mended)["variants"], strict=True):
        statuses = list(variant.drafts.values_list("status", flat=True))
        assert fig["failure_rate"]["value"] == pytest.approx(statuses.count("failed") / 6, abs=1e-4)
        assert fig["repair_rate"]["value"] == pytest.approx(statuses.count("repaired") / 6, abs=1e-4)
        assert fig["reask_rate"]["value"] == pytest.approx(statuses.count("reasked") / 6, abs=1e-4)
        assert statuses.count("ok") == 0
    assert not Draft.objects.exists()


def test_a_redelivered_or_stale_message_drafts_nothing_twice(project, admin_user, simulated):
    SampleFactory.create_numbered(1, project=project, turns=1)
    trial = service.trial_create(
        project=project, user=admin_user, set={"kind": "random", "n": 1}, variants=[{}, {"temperature": 1.0}]
    )
    row = TrialDraft.objects.filter(variant__trial=trial).order_by("pk").first()
    assert row is not None
    service.trial_item_run(draft_id=row.pk, token="stale")
    assert TrialDraft.objects.get(pk=row.pk).state == TrialDraft.State.QUEUED
    service.trial_item_run(draft_id=row.pk, token=row.token)
    service.trial_item_run(draft_id=row.pk, token=row.token)  # delivered again
    done = TrialDraft.objects.get(pk=row.pk)
    assert done.state == TrialDraft.State.DONE and done.calls == 1


def test_at_most_a_window_of_drafts_is_on_the_broker_and_each_finished_one_sends_the_next(
    project, admin_user, simulated, settings
):
    settings.JOB_WINDOW = 3
    SampleFactory.create_numbered(4, project=project, turns=1)
    trial = service.trial_create(
        project=project, user=admin_user, set={"kind": "random", "n": 4}, variants=[{}, {"temperature": 1.0}]
    )
    rows = TrialDraft.objects.filter(variant__trial=trial).order_by("pk")
    assert list(rows.values_list("state", flat=True)) == ["queued"] * 3 + ["pending"] * 5
    first = rows[0]
    service.trial_item_run(draft_id=first.pk, token=first.token)
    assert list(rows.values_list("state", flat=True)) == ["done"] + ["queued"] * 3 + ["pending"] * 4
    # Turn by turn, each variant alike: the window holds both variants of the first turns.
    assert [r.variant.label for r in rows[:4]] == ["A", "B", "A", "B"]


def test_the_watcher_sends_again_the_drafts_whose_worker_was_lost(
    project, admin_user, simulated, django_capture_on_commit_callbacks
):
    SampleFactory.create_numbered(2, project=project, turns=1)
    trial = service.trial_create(  # its messages never run: as if the broker had lost them with a worker
        project=project, user=admin_user, set={"kind": "random", "n": 2}, variants=[{}, {"temperature": 1.0}]
    )
    rows = TrialDraft.objects.filter(variant__trial=trial)
    old_tokens = dict(rows.values_list("pk", "token"))
    with django_capture_on_commit_callbacks(execute=True):
        service.trial_watch(trial_id=trial.pk)  # within their lease: left alone
    assert set(rows.values_list("state", flat=True)) == {TrialDraft.State.QUEUED}
    rows.update(lease_until=timezone.now() - timedelta(seconds=1))
    Trial.objects.filter(pk=trial.pk).update(watched_at=None)
    with django_capture_on_commit_callbacks(execute=True):
        service.trial_watch(trial_id=trial.pk)
    assert set(rows.values_list("state", flat=True)) == {TrialDraft.State.DONE}
    trial.refresh_from_db()
    assert trial.state == Trial.State.COMPLETED and trial.watched_at is not None
    for pk, token in old_tokens.items():  # the lost messages, delivered late, do nothing
        service.trial_item_run(draft_id=pk, token=token)
    assert list(rows.values_list("calls", flat=True)) == [1, 1, 1, 1]


def test_the_dry_run_states_each_variants_calls_tokens_and_cost_and_makes_nothing(project, admin_user):
    SampleFactory.create_numbered(3, project=project, turns=2)
    v2(project)
    pick = {"kind": "random", "n": 3}
    estimate = service.trial_dry_run(service.trial_request(project=project, set=pick, variants=TWO))
    assert [v["label"] for v in estimate["variants"]] == ["A", "B"]
    assert [v["calls"] for v in estimate["variants"]] == [6, 6] and estimate["calls"] == 12
    assert all(v["tokens_in"] > 0 and v["tokens_out"] > 0 for v in estimate["variants"])
    assert Decimal(estimate["cost"]) == sum(Decimal(v["cost"]) for v in estimate["variants"]) > 0
    client = token_client(admin_user)
    answer = client.post(
        reverse("api-trial-list", args=[project.slug]), {"set": pick, "variants": TWO, "dry_run": True}, format="json"
    )
    assert answer.status_code == 200 and answer.json()["calls"] == 12
    page = Client()
    page.force_login(admin_user)
    form = {"set_kind": "random", "n": "3", "seed": "0", "v0_prompt_version": "v1", "v1_prompt_version": "v2"}
    shown = page.post(reverse("quality:trial-list", args=[project.slug]), {**form, "dry_run": "1"})
    assert shown.status_code == 200 and b'<td id="estimate-calls">12</td>' in shown.content
    assert not Trial.objects.exists() and not TrialDraft.objects.exists()


def test_a_seeded_random_set_is_the_same_for_the_same_seed(project, admin_user):
    SampleFactory.create_numbered(30, project=project, turns=1)
    pick = {"kind": "random", "n": 5, "seed": 11}
    one = service.trial_request(project=project, set=pick, variants=[{}, {"temperature": 1.0}])
    two = service.trial_request(project=project, set=pick, variants=[{}, {"temperature": 1.0}])
    other = service.trial_request(project=project, set={**pick, "seed": 12}, variants=[{}, {"temperature": 1.0}])
    assert one.sample_ids == two.sample_ids and len(one.sample_ids) == 5
    assert other.sample_ids != one.sample_ids


@pytest.mark.parametrize(
    ("trial_set", "variants", "field"),
    [
        ("nope", TWO, "set"),
        ({"kind": "all"}, TWO, "set.kind"),
        ({"kind": "random"}, TWO, "set.n"),
        ({"kind": "random", "n": 0}, TWO, "set.n"),
        ({"kind": "random", "n": service.MAX_SAMPLES + 1}, TWO, "set.n"),
        ({"kind": "random", "n": 2, "seed": -1}, TWO, "set.seed"),
        ({"kind": "random", "n": 2, "mood": 1}, TWO, "set.mood"),
        ({"kind": "samples", "samples": [f"s{i}" for i in range(service.MAX_SAMPLES + 1)]}, TWO, "set.samples"),
        ({"kind": "samples", "samples": ["nowhere"]}, TWO, "set.samples"),
        ({"kind": "samples", "samples": []}, TWO, "set.samples"),
        ({"kind": "reviewed", "n": 5}, TWO, "set.kind"),
        ({"kind": "random", "n": 2}, [{}], "variants"),
        ({"kind": "random", "n": 2}, [{"temperature": t / 10} for t in range(service.MAX_VARIANTS + 1)], "variants"),
        ({"kind": "random", "n": 2}, "two", "variants"),
        ({"kind": "random", "n": 2}, [{}, {"mood": "calm"}], "variants.1.mood"),
        ({"kind": "random", "n": 2}, [{}, {"temperature": 3}], "variants.1.temperature"),
        ({"kind": "random", "n": 2}, [{}, {"prompt_version": "v9"}], "variants.1.prompt_version"),
        ({"kind": "random", "n": 2}, [{}, {"connection": "elsewhere"}], "variants.1.connection"),
        ({"kind": "random", "n": 2}, [{}, {"send_image": "yes"}], "variants.1.send_image"),
        ({"kind": "random", "n": 2}, [{}, {}], "variants.1"),
        ({"kind": "random", "n": 2}, [{}, 3], "variants.1"),
    ],
)
def test_bad_input_is_refused_naming_the_field(project, trial_set, variants, field):
    SampleFactory.create_numbered(3, project=project, turns=1)
    with pytest.raises(InvalidInput) as refused:
        service.trial_request(project=project, set=trial_set, variants=variants)
    assert field in refused.value.errors, refused.value.errors
    assert not Trial.objects.exists()


def test_a_long_name_and_too_many_drafts_are_refused(project, monkeypatch):
    SampleFactory.create_numbered(3, project=project, turns=2)
    with pytest.raises(InvalidInput) as refused:
        service.trial_request(project=project, name="x" * 101, set={"kind": "random", "n": 3}, variants=TWO[:1] * 2)
    assert "name" in refused.value.errors
    monkeypatch.setattr(service, "MAX_DRAFTS", 11)
    with pytest.raises(InvalidInput) as refused:
        service.trial_request(project=project, set={"kind": "random", "n": 3}, variants=[{}, {"temperature": 1.0}])
    assert "set" in refused.value.errors and "more than 11 drafts" in str(refused.value)


def test_promoting_the_winner_makes_its_prompt_model_and_temperature_the_default(
    project, admin_user, simulated, django_capture_on_commit_callbacks
):
    SampleFactory.create_numbered(2, project=project, turns=1)
    v2(project)
    running = service.trial_create(project=project, user=admin_user, set={"kind": "random", "n": 2}, variants=TWO)
    with pytest.raises(Conflict):
        service.trial_promote(trial=running, variant=service.variant_get(running, "B"))
    trial = run(
        django_capture_on_commit_callbacks,
        project=project,
        user=admin_user,
        set={"kind": "random", "n": 2},
        variants=TWO,
    )
    project = service.trial_promote(trial=trial, variant=service.variant_get(trial, "b"))
    project.refresh_from_db()
    assert (project.prompt_version, project.llm_temperature, project.llm_connection) == ("v2", 0.7, "default")
    trial.refresh_from_db()
    assert trial.promoted is not None and trial.promoted.label == "B"
    with pytest.raises(Exception, match="No variant"):
        service.variant_get(trial, "Z")


# --- the API ------------------------------------------------------------------------------------


def test_the_api_starts_a_trial_shows_its_figures_and_promotes(
    project, admin_user, simulated, django_capture_on_commit_callbacks
):
    reviewed(project, 3)
    v2(project)
    client = token_client(admin_user)
    url = reverse("api-trial-list", args=[project.slug])
    with django_capture_on_commit_callbacks(execute=True):
        made = client.post(url, {"name": "v2?", "set": {"kind": "reviewed", "n": 3}, "variants": TWO}, format="json")
    assert made.status_code == 201, made.content
    trial_id = made.json()["id"]
    assert [v["prompt_version"] for v in made.json()["variants"]] == ["v1", "v2"]
    listed = client.get(url)
    assert listed.status_code == 200 and [t["id"] for t in listed.json()] == [trial_id]
    shown = client.get(reverse("api-trial-detail", args=[project.slug, trial_id]))
    assert shown.status_code == 200
    body = shown.json()
    assert body["state"] == "completed" and [v["gold"] for v in body["variants"]] == [6, 6]
    assert set(body["variants"][0]["agreement"]) == {"kappa", "within_1", "exact"}
    promoted = client.post(reverse("api-trial-promote", args=[project.slug, trial_id, "B"]))
    assert promoted.status_code == 200 and promoted.json()["promoted"] == "B"
    project.refresh_from_db()
    assert project.prompt_version == "v2"
    assert client.post(reverse("api-trial-promote", args=[project.slug, trial_id, "Q"])).status_code == 404


def test_the_api_names_the_field_at_fault_and_keeps_to_the_roles(project, admin_user, researcher_user, annotator_user):
    SampleFactory.create_numbered(2, project=project, turns=1)
    url = reverse("api-trial-list", args=[project.slug])
    bad = token_client(admin_user).post(url, {"set": {"kind": "random", "n": 999}, "variants": TWO}, format="json")
    assert bad.status_code == 400 and "set.n" in bad.json()["errors"]
    bad = token_client(admin_user).post(url, {"set": {"kind": "random", "n": 1}, "variants": [{}]}, format="json")
    assert bad.status_code == 400 and "variants" in bad.json()["errors"]
    long_name = {"name": "x" * 101, "set": {"kind": "random", "n": 1}, "variants": TWO}
    assert "name" in token_client(admin_user).post(url, long_name, format="json").json()["errors"]
    good = {"set": {"kind": "random", "n": 1}, "variants": [{}, {"temperature": 1.0}]}
    assert token_client(researcher_user).post(url, good, format="json").status_code == 403
    assert token_client(researcher_user).get(url).status_code == 200
    assert token_client(annotator_user).get(url).status_code == 403
    assert token_client(make_user("stranger")).get(url).status_code == 404
    assert token_client(admin_user).get(reverse("api-trial-detail", args=[project.slug, 12345])).status_code == 404


# --- the pages ----------------------------------------------------------------------------------


def test_the_pages_start_a_trial_show_the_drafts_side_by_side_and_promote(
    project, admin_user, researcher_user, simulated, django_capture_on_commit_callbacks
):
    samples = reviewed(project, 2)
    v2(project)
    client = Client()
    client.force_login(admin_user)
    url = reverse("quality:trial-list", args=[project.slug])
    assert client.get(url).status_code == 200
    form = {
        "name": "wording",
        "set_kind": "reviewed",
        "n": "2",
        "seed": "0",
        "v0_prompt_version": "v1",
        "v1_prompt_version": "v2",
        "v1_temperature": "0.7",
    }
    with django_capture_on_commit_callbacks(execute=True):
        made = client.post(url, form)
    assert made.status_code == 302, made.content.decode()[:2000]
    trial = Trial.objects.get()
    page = client.get(made["Location"] + f"?sample={samples[1].pk}")
    html = page.content.decode()
    assert page.status_code == 200
    assert 'data-variant="A"' in html and 'data-variant="B"' in html and "Human final" in html
    assert "<ins>" in html or "<del>" in html or 'class="diff-body critique"' in html
    assert 'data-fig="kappa"' in html
    bad = client.get(made["Location"] + "?sample=999999")
    assert bad.status_code == 400
    researcher = Client()
    researcher.force_login(researcher_user)
    assert researcher.get(made["Location"]).status_code == 200
    assert researcher.post(reverse("quality:trial-promote", args=[project.slug, trial.pk, "B"])).status_code == 403
    assert researcher.post(url, form).status_code == 403
    done = client.post(reverse("quality:trial-promote", args=[project.slug, trial.pk, "B"]), follow=True)
    assert "Variant B is now the project" in done.content.decode()
    project.refresh_from_db()
    assert (project.prompt_version, project.llm_temperature) == ("v2", 0.7)


def test_the_new_trial_page_names_a_bad_variant(project, admin_user):
    SampleFactory.create_numbered(2, project=project, turns=1)
    client = Client()
    client.force_login(admin_user)
    url = reverse("quality:trial-list", args=[project.slug])
    only_one = client.post(url, {"set_kind": "random", "n": "2", "seed": "0", "v0_prompt_version": "v1"})
    assert only_one.status_code == 400 and "variants" in only_one.content.decode()
    assert not Trial.objects.exists()


def test_the_job_form_drafts_with_the_prompt_version_chosen(
    project, admin_user, simulated, django_capture_on_commit_callbacks
):
    SampleFactory.create_numbered(1, project=project, turns=1)
    v2(project)
    client = Client()
    client.force_login(admin_user)
    url = reverse("feedback:job-new", args=[project.slug])
    assert b'<option value="v2">v2</option>' in client.get(url).content
    with django_capture_on_commit_callbacks(execute=True):
        made = client.post(url, {"kind": "draft", "status": "never", "rounds": "1", "prompt_version": "v2"})
    assert made.status_code == 302
    job = Job.objects.get()
    assert job.llm_settings["drafter"]["prompt_version"] == "v2"
    assert Draft.objects.get().prompt_version == "v2"
    bad = client.post(url, {"kind": "draft", "status": "never", "rounds": "1", "prompt_version": "v7"})
    assert bad.status_code == 200 and "prompt_version" in bad.content.decode()


def test_researchers_and_annotators_see_what_their_role_allows(project, researcher_user, annotator_user):
    url = reverse("quality:trial-list", args=[project.slug])
    researcher = Client()
    researcher.force_login(researcher_user)
    page = researcher.get(url)
    assert page.status_code == 200 and b"trial-form" not in page.content
    annotator = Client()
    annotator.force_login(annotator_user)
    assert annotator.get(url).status_code == 403


# --- cancelling ---------------------------------------------------------------------------------


def test_cancelling_stops_what_is_not_under_way_and_keeps_what_came_back(
    project, admin_user, simulated, settings, django_capture_on_commit_callbacks
):
    settings.JOB_WINDOW = 3
    SampleFactory.create_numbered(4, project=project, turns=1)
    trial = service.trial_create(
        project=project, user=admin_user, set={"kind": "random", "n": 4}, variants=[{}, {"temperature": 1.0}]
    )
    rows = TrialDraft.objects.filter(variant__trial=trial).order_by("pk")
    first, second, third = rows[0], rows[1], rows[2]
    service.trial_item_run(draft_id=first.pk, token=first.token)  # done; the fourth row is sent
    # The second is under way (claimed by a worker), the rest queued or pending.
    TrialDraft.objects.filter(pk=second.pk).update(state=TrialDraft.State.RUNNING)
    cancelled = service.trial_cancel(trial=trial)
    assert cancelled.state == Trial.State.CANCELLED and cancelled.finished_at is not None
    assert list(rows.values_list("state", flat=True)) == ["done", "running"] + ["cancelled"] * 6
    # A queued message delivered now finds its draft cancelled: no call.
    service.trial_item_run(draft_id=third.pk, token=third.token)
    assert TrialDraft.objects.get(pk=third.pk).calls == 0
    # The draft under way meets a rate limit: it is not tried again, and nothing is sent.
    with django_capture_on_commit_callbacks() as sent:
        service._again(TrialDraft.objects.get(pk=second.pk), second.token, 1.0, error="")
    assert not sent and TrialDraft.objects.get(pk=second.pk).state == TrialDraft.State.CANCELLED
    figures = trial_figures(Trial.objects.get(pk=trial.pk))
    assert [(v["done"], v["cancelled"], v["open"]) for v in figures["variants"]] == [(1, 3, 0), (0, 4, 0)]
    with pytest.raises(Conflict, match="cancelled: only a running trial"):
        service.trial_cancel(trial=trial)
    with pytest.raises(Conflict, match="was cancelled"):
        service.trial_promote(trial=Trial.objects.get(pk=trial.pk), variant=first.variant)
    with django_capture_on_commit_callbacks(execute=True) as watched:
        service.trial_watch(trial_id=trial.pk)
    assert not watched  # no watcher goes on for a cancelled trial


def test_a_draft_under_way_when_its_trial_is_cancelled_is_kept(project, admin_user, simulated):
    SampleFactory.create_numbered(1, project=project, turns=1)
    trial = service.trial_create(
        project=project, user=admin_user, set={"kind": "random", "n": 1}, variants=[{}, {"temperature": 1.0}]
    )
    row = TrialDraft.objects.filter(variant__trial=trial).order_by("pk").first()
    assert row is not None
    TrialDraft.objects.filter(pk=row.pk).update(state=TrialDraft.State.RUNNING)
    service.trial_cancel(trial=trial)
    service._store(TrialDraft.objects.get(pk=row.pk), row.token, state=TrialDraft.State.DONE, calls=1)
    assert TrialDraft.objects.get(pk=row.pk).state == TrialDraft.State.DONE
    assert Trial.objects.get(pk=trial.pk).state == Trial.State.CANCELLED


def test_admins_cancel_a_trial_through_the_api_and_the_page_others_may_not(
    project, admin_user, researcher_user, simulated
):
    SampleFactory.create_numbered(2, project=project, turns=1)
    variants = [{}, {"temperature": 1.0}]
    make = {"project": project, "user": admin_user, "set": {"kind": "random", "n": 2}, "variants": variants}
    by_api, by_page = service.trial_create(**make), service.trial_create(**make)  # eager, not yet run
    api_url = reverse("api-trial-cancel", args=[project.slug, by_api.pk])
    assert token_client(researcher_user).post(api_url).status_code == 403
    done = token_client(admin_user).post(api_url)
    assert done.status_code == 200 and done.json()["state"] == "cancelled"
    assert [v["cancelled"] for v in done.json()["variants"]] == [2, 2]
    again = token_client(admin_user).post(api_url)
    assert again.status_code == 409 and again.json()["code"] == "conflict"
    page = Client()
    page.force_login(admin_user)
    detail = reverse("quality:trial-detail", args=[project.slug, by_page.pk])
    assert b'id="trial-cancel"' in page.get(detail).content
    reader = Client()
    reader.force_login(researcher_user)
    assert b'id="trial-cancel"' not in reader.get(detail).content
    assert reader.post(reverse("quality:trial-cancel", args=[project.slug, by_page.pk])).status_code == 403
    posted = page.post(reverse("quality:trial-cancel", args=[project.slug, by_page.pk]), follow=True)
    assert posted.status_code == 200 and b"is cancelled" in posted.content
    assert b'id="trial-cancel"' not in posted.content and b"(2 cancelled)" in posted.content
    assert Trial.objects.get(pk=by_page.pk).state == Trial.State.CANCELLED


def test_cancelling_also_ends_drafts_whose_worker_was_lost_and_a_message_sent_in_the_race(
    project, admin_user, simulated
):
    SampleFactory.create_numbered(2, project=project, turns=1)
    trial = service.trial_create(
        project=project, user=admin_user, set={"kind": "random", "n": 2}, variants=[{}, {"temperature": 1.0}]
    )
    rows = TrialDraft.objects.filter(variant__trial=trial).order_by("pk")
    lost, raced = rows[0], rows[1]
    past = timezone.now() - timedelta(seconds=1)
    TrialDraft.objects.filter(pk=lost.pk).update(state=TrialDraft.State.RUNNING, lease_until=past)
    TrialDraft.objects.filter(pk=raced.pk).update(state=TrialDraft.State.RUNNING)
    service.trial_cancel(trial=trial)
    assert TrialDraft.objects.get(pk=lost.pk).state == TrialDraft.State.CANCELLED
    # A rate-limited retry that slipped past the cancellation: its message calls nothing.
    TrialDraft.objects.filter(pk=raced.pk).update(state=TrialDraft.State.QUEUED, token="late")
    service.trial_item_run(draft_id=raced.pk, token="late")
    late = TrialDraft.objects.get(pk=raced.pk)
    assert late.state == TrialDraft.State.CANCELLED and late.calls == 0
