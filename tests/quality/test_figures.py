"""The quality figures against values computed independently from the raw pairs: scikit-learn's
quadratic weighted kappa, scipy's Spearman rho, krippendorff's alpha, hand counts. Projects are
reviewed through the real review path, so the summary the figures read is the one it kept."""

from __future__ import annotations

import random
from typing import Any

import krippendorff
import numpy as np
import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from scipy.stats import spearmanr
from sklearn.metrics import cohen_kappa_score

from feedback.errors import InvalidInput
from feedback.review.models import Decision
from quality.figures import compute, markdown_table
from quality.filters import TEXT_MAX, QualityFilters
from quality.models import ReviewedScore, ReviewedTurn
from tests.quality.quality_helpers import CRITERIA, Review, SamplePlan, TurnPlan, build, reviewers

pytestmark = pytest.mark.django_db

LABELS = list(range(1, 8))


def close(value: float | np.floating[Any]) -> Any:
    """Figures are rounded to 4 digits."""
    return pytest.approx(value, abs=1e-4)


def random_scores(rng: random.Random) -> dict[str, int]:
    return {c: rng.randint(1, 7) for c in CRITERIA}


def drafter_project(project, count: int = 30, seed: int = 1):
    """``count`` one-turn samples reviewed once by one of two reviewers: a third accepted, a sixth
    rejected (some with scores of their own), the rest edited to nearby scores. Returns the raw
    (draft, final, decision) of each."""
    rng = random.Random(seed)
    ann, bea = reviewers(project, "ann", "bea")
    raw, plans = [], []
    for i in range(count):
        draft = random_scores(rng)
        final: dict[str, int] | None
        roll = rng.random()
        if roll < 1 / 3:
            decision, final = Decision.ACCEPTED, dict(draft)
        elif roll < 0.5:
            decision, final = Decision.REJECTED, (random_scores(rng) if i % 2 else None)
        else:
            decision = Decision.EDITED
            final = {c: min(7, max(1, v + rng.choice([-2, -1, 0, 0, 1]))) for c, v in draft.items()}
            if final == draft:  # an edit that changes nothing is stored as an acceptance
                decision = Decision.ACCEPTED
        raw.append((draft, final, decision))
        plan = TurnPlan(draft=draft, decision=decision, final=final, time_ms=1000 * (i + 1))
        plans.append(SamplePlan(reviews=[Review(ann if i % 2 == 0 else bea, [plan])]))
    build(project, plans)
    return raw


def test_drafter_agreement_matches_independent_computation(project):
    raw = drafter_project(project)
    figures = compute(project, QualityFilters())
    drafter = figures["drafter"]
    assert drafter["n"] == len(raw)
    for decision in Decision.values:
        k = sum(1 for _, _, d in raw if d == decision)
        assert drafter["decisions"][decision]["value"] == close(k / len(raw))
        assert drafter["decisions"][decision]["n"] == len(raw)
    for c in CRITERIA:
        pairs = [(d[c], f[c]) for d, f, decision in raw if decision != Decision.REJECTED]
        drafts = [a for a, _ in pairs]
        finals = [b for _, b in pairs]
        figure = drafter["criteria"][c]
        assert figure["n"] == len(pairs)
        assert figure["exact"]["value"] == close(np.mean([a == b for a, b in pairs]))
        assert figure["within_1"]["value"] == close(np.mean([abs(a - b) <= 1 for a, b in pairs]))
        assert figure["kappa"]["value"] == close(cohen_kappa_score(drafts, finals, weights="quadratic", labels=LABELS))
        assert figure["spearman"]["value"] == close(spearmanr(drafts, finals).statistic)
        assert figure["mean_diff"]["value"] == close(np.mean(np.subtract(drafts, finals)))
        expected = np.zeros((7, 7), dtype=int)
        for a, b in pairs:
            expected[a - 1, b - 1] += 1
        assert figure["confusion"] == {"labels": LABELS, "counts": expected.tolist()}
        assert figure["draft_distribution"] == expected.sum(axis=1).tolist()
        assert figure["final_distribution"] == expected.sum(axis=0).tolist()
        lo, hi = figure["kappa"]["ci"]
        assert lo <= figure["kappa"]["value"] <= hi


def test_rejected_drafts_are_counted_and_left_out_of_agreement(project):
    (ann,) = reviewers(project, "ann")
    scores = {"helpfulness": 3, "honesty": 3, "harmlessness": 3}
    plans = [
        SamplePlan(reviews=[Review(ann, [TurnPlan(draft=scores, decision=Decision.ACCEPTED)])]),
        SamplePlan(reviews=[Review(ann, [TurnPlan(draft={**scores, "honesty": 5})])]),
        SamplePlan(reviews=[Review(ann, [TurnPlan(draft=scores, decision=Decision.REJECTED, final={"honesty": 7})])]),
    ]
    build(project, plans)
    drafter = compute(project)["drafter"]
    assert drafter["decisions"]["rejected"]["value"] == close(1 / 3)
    assert drafter["criteria"]["honesty"]["n"] == 2  # the rejected one is not a pair
    assert drafter["criteria"]["honesty"]["exact"]["value"] == 1.0


def test_all_scores_equal_make_kappa_undefined_with_a_reason(project):
    (ann,) = reviewers(project, "ann")
    same = dict.fromkeys(CRITERIA, 4)
    build(project, [SamplePlan(reviews=[Review(ann, [TurnPlan(draft=same)])]) for _ in range(3)])
    figure = compute(project)["drafter"]["criteria"]["helpfulness"]
    assert figure["exact"]["value"] == 1.0
    assert figure["kappa"]["value"] is None
    assert "undefined" in figure["kappa"]["undefined"]
    assert figure["spearman"]["value"] is None and figure["spearman"]["undefined"]


def test_one_sample_and_empty_project(project):
    empty = compute(project)
    assert empty["drafter"]["n"] == 0
    assert empty["drafter"]["decisions"]["accepted"]["undefined"] == "no data"
    assert empty["reviewers"]["n"] == 0
    assert empty["models"] == []
    (ann,) = reviewers(project, "ann")
    build(project, [SamplePlan(reviews=[Review(ann, [TurnPlan(draft=dict.fromkeys(CRITERIA, 5))])])])
    figures = compute(project)
    assert figures["drafter"]["n"] == 1
    assert figures["drafter"]["criteria"]["honesty"]["n"] == 1
    assert figures["drafter"]["decisions"]["accepted"]["value"] == 1.0
    assert figures["reviewers"]["alpha"]["honesty"]["value"] is None
    assert figures["reviewers"]["alpha"]["honesty"]["undefined"]


def test_missing_criteria_leave_their_pairs_out(project):
    (ann,) = reviewers(project, "ann")
    partial = {"helpfulness": 5, "harmlessness": 6}  # the draft says nothing of honesty
    final = {"helpfulness": 4, "honesty": 2, "harmlessness": 6}
    build(
        project,
        [
            SamplePlan(reviews=[Review(ann, [TurnPlan(draft=partial, decision=Decision.EDITED, final=final)])]),
            SamplePlan(reviews=[Review(ann, [TurnPlan(draft=dict.fromkeys(CRITERIA, 5))])]),
        ],
    )
    criteria = compute(project)["drafter"]["criteria"]
    assert criteria["honesty"]["n"] == 1
    assert criteria["helpfulness"]["n"] == 2
    assert criteria["helpfulness"]["exact"]["value"] == 0.5


def test_text_distance_is_zero_when_accepted_and_the_word_edit_share_when_edited(project):
    (ann,) = reviewers(project, "ann")
    scores = dict.fromkeys(CRITERIA, 5)
    # The draft's critique has 10 words; the edit replaces one ("bus" → "coach"): 0.1.
    build(
        project,
        [
            SamplePlan(reviews=[Review(ann, [TurnPlan(draft=scores)])]),
            SamplePlan(reviews=[Review(ann, [TurnPlan(draft=scores, decision=Decision.EDITED, final=scores)])]),
        ],
    )
    text = compute(project)["drafter"]["text"]
    assert text["critique"]["mean"]["value"] == close(0.05)
    assert text["critique"]["mean"]["n"] == 2
    assert text["critique"]["histogram"]["counts"][0] == 1
    assert text["critique"]["histogram"]["counts"][1] == 1
    assert text["refinement"]["mean"]["value"] == 0.0


def test_reviewer_agreement_matches_krippendorff_and_hand_counts(project):
    project.reviews_required = 2
    project.save()
    ann, bea = reviewers(project, "ann", "bea")
    rng = random.Random(7)
    plans, finals = [], []
    for _ in range(12):
        draft = random_scores(rng)
        a = {c: min(7, max(1, v + rng.choice([-1, 0, 1]))) for c, v in draft.items()}
        b = {c: min(7, max(1, v + rng.choice([-1, 0, 0, 2]))) for c, v in draft.items()}
        da = Decision.ACCEPTED if a == draft else Decision.EDITED
        db = Decision.ACCEPTED if b == draft else Decision.EDITED
        finals.append((a, b, da, db))
        plans.append(
            SamplePlan(
                reviews=[
                    Review(ann, [TurnPlan(draft=draft, decision=da, final=a, time_ms=10_000)]),
                    Review(bea, [TurnPlan(draft=draft, decision=db, final=b, time_ms=20_000)]),
                ]
            )
        )
    build(project, plans)
    figures = compute(project)["reviewers"]
    assert figures["n"] == 12
    for c in CRITERIA:
        data = np.array([[a[c] for a, _, _, _ in finals], [b[c] for _, b, _, _ in finals]], dtype=float)
        expected = krippendorff.alpha(reliability_data=data, level_of_measurement="ordinal")
        assert figures["alpha"][c]["value"] == close(expected)
        assert figures["alpha"][c]["n"] == 12
        exact = np.mean([a[c] == b[c] for a, b, _, _ in finals])
        assert figures["pairwise"][c]["exact"]["value"] == close(exact)
        assert figures["pairwise"][c]["within_1"]["value"] == close(
            np.mean([abs(a[c] - b[c]) <= 1 for a, b, _, _ in finals])
        )
    assert figures["decisions"]["value"] == close(np.mean([da == db for _, _, da, db in finals]))
    people = {a["username"]: a for a in figures["annotators"]}
    assert people["ann"]["reviews"] == 12 and people["bea"]["reviews"] == 12
    assert people["ann"]["median_seconds"] == 10.0 and people["bea"]["median_seconds"] == 20.0
    accepted = np.mean([da == Decision.ACCEPTED for _, _, da, _ in finals])
    assert people["ann"]["accepted"]["value"] == close(accepted)
    same = sum(a[c] == b[c] for a, b, _, _ in finals for c in CRITERIA)
    assert people["ann"]["agreement"]["value"] == close(same / (12 * 3))
    assert people["ann"]["agreement"]["n"] == 12 * 3


def test_one_reviewer_has_no_reviewer_agreement(project):
    drafter_project(project, count=5)
    figures = compute(project)["reviewers"]
    assert figures["n"] == 0
    assert figures["alpha"]["helpfulness"]["value"] is None
    assert figures["alpha"]["helpfulness"]["undefined"]
    assert figures["decisions"]["undefined"] == "no data"
    assert {a["username"] for a in figures["annotators"]} == {"ann", "bea"}


def test_only_submitted_reviews_count(project):
    (ann,) = reviewers(project, "ann")
    scores = dict.fromkeys(CRITERIA, 5)
    build(
        project,
        [
            SamplePlan(reviews=[Review(ann, [TurnPlan(draft=scores)])]),
            SamplePlan(reviews=[Review(ann, [TurnPlan(draft=scores), TurnPlan(draft=scores)], submit=False)]),
        ],
    )
    assert compute(project)["drafter"]["n"] == 1
    assert ReviewedTurn.objects.filter(submitted=False).count() == 1  # kept, not counted


def test_models_mix_human_and_draft_scores_and_say_which(project):
    (ann,) = reviewers(project, "ann")
    build(
        project,
        [
            SamplePlan(
                source_model="lvlm-a",
                reviews=[
                    Review(
                        ann,
                        [
                            TurnPlan(
                                draft=dict.fromkeys(CRITERIA, 3),
                                decision=Decision.EDITED,
                                final=dict.fromkeys(CRITERIA, 2),
                            ),
                            TurnPlan(
                                draft=dict.fromkeys(CRITERIA, 6),
                                decision=Decision.EDITED,
                                final=dict.fromkeys(CRITERIA, 5),
                            ),
                        ],
                    )
                ],
            ),
            SamplePlan(
                source_model="lvlm-a",
                reviews=[
                    Review(
                        ann,
                        [
                            TurnPlan(draft=dict.fromkeys(CRITERIA, 4)),
                            TurnPlan(draft=dict.fromkeys(CRITERIA, 4)),
                        ],
                    )
                ],
            ),
            # Never reviewed: its draft's scores stand for it.
            SamplePlan(source_model="lvlm-b", reviews=[]),
        ],
    )
    from tests.factories import DraftFactory

    unreviewed = project.samples.get(external_id="q2").turns.get()
    DraftFactory.create(turn=unreviewed, scores={"helpfulness": 1, "honesty": 7, "harmlessness": 7})
    DraftFactory.create(turn=unreviewed, scores={"helpfulness": 6, "honesty": 6, "harmlessness": 6})  # the latest
    models = {m["model"]: m for m in compute(project)["models"]}
    a, b = models["lvlm-a"], models["lvlm-b"]
    assert a["n"] == 4 and a["source"] == "imported"
    assert a["scores"]["honesty"]["mean"]["value"] == close((2 + 5 + 4 + 4) / 4)
    assert a["scores"]["honesty"]["human"] == 4 and a["scores"]["honesty"]["draft"] == 0
    assert b["n"] == 1
    assert b["scores"]["helpfulness"] == {"mean": b["scores"]["helpfulness"]["mean"], "human": 0, "draft": 1}
    assert b["scores"]["helpfulness"]["mean"]["value"] == 6.0
    step = a["interaction"]["honesty"]
    assert step["n"] == 2  # turn 0 → turn 1 of each reviewed sample: 2 → 5 and 4 → 4
    assert step["mean_change"]["value"] == close(1.5)
    assert step["improved"]["value"] == 0.5 and step["same"]["value"] == 0.5 and step["worse"]["value"] == 0.0


def test_filters_narrow_the_figures(project):
    (ann,) = reviewers(project, "ann")
    scores = dict.fromkeys(CRITERIA, 5)
    build(
        project,
        [SamplePlan(prompt_version="v1", draft_model="drafter-a", reviews=[Review(ann, [TurnPlan(draft=scores)])])]
        + [SamplePlan(prompt_version="v2", draft_model="drafter-b", reviews=[Review(ann, [TurnPlan(draft=scores)])])]
        * 2,
    )
    everything = compute(project)
    assert everything["options"]["prompt_versions"] == ["v1", "v2"]
    assert {"drafter-a", "drafter-b", "lvlm-a"} <= set(everything["options"]["models"])
    assert {row["key"]: row["n"] for row in everything["drafter"]["by"]["prompt_version"]} == {"v1": 1, "v2": 2}
    assert compute(project, QualityFilters(prompt_version="v2"))["drafter"]["n"] == 2
    assert compute(project, QualityFilters(model="drafter-a"))["drafter"]["n"] == 1
    only = compute(project, QualityFilters(criterion="honesty"))
    assert list(only["drafter"]["criteria"]) == ["honesty"]
    assert list(only["reviewers"]["alpha"]) == ["honesty"]
    import datetime

    assert compute(project, QualityFilters(until=datetime.date(2000, 1, 1)))["drafter"]["n"] == 0
    today = datetime.datetime.now(datetime.UTC).date()
    assert compute(project, QualityFilters(since=today, until=today))["drafter"]["n"] == 3
    over_time = everything["drafter"]["over_time"]
    assert {row["prompt_version"] for row in over_time} == {"v1", "v2"}
    assert sum(row["n"] for row in over_time) == 3 * len(CRITERIA)


def test_the_number_of_queries_does_not_grow_with_the_project(project, django_user_model):
    from feedback.models import Project

    counts = []
    for size, slug in ((3, "small"), (15, "larger")):
        other = Project.objects.create(name=slug, slug=slug, reviews_required=2)
        ann, bea = reviewers(other, f"ann-{slug}", f"bea-{slug}")
        rng = random.Random(size)
        plans = [
            SamplePlan(
                prompt_version=f"v{i % 3}",
                reviews=[
                    Review(ann, [TurnPlan(draft=random_scores(rng)), TurnPlan(draft=random_scores(rng))]),
                    Review(
                        bea,
                        [
                            TurnPlan(draft=random_scores(rng), decision=Decision.EDITED, final=random_scores(rng)),
                            TurnPlan(draft=random_scores(rng)),
                        ],
                    ),
                ],
            )
            for i in range(size)
        ]
        build(other, plans, prefix=slug)
        with CaptureQueriesContext(connection) as queries:
            compute(other, QualityFilters())
        counts.append(len(queries))
    assert counts[0] == counts[1], counts


def test_the_rebuilt_summary_equals_the_kept_one(project, django_capture_on_commit_callbacks):
    drafter_project(project, count=12)
    kept = compute(project)
    rows = sorted(ReviewedScore.objects.values_list("turn_id", "criterion", "draft_score", "final_score", "next_score"))
    with django_capture_on_commit_callbacks(execute=True):  # the cube is recomputed when the deletion commits
        ReviewedTurn.objects.all().delete()
    assert compute(project)["drafter"]["n"] == 0
    call_command("quality_rebuild", "--project", project.slug, verbosity=0)
    assert compute(project) == kept
    assert (
        sorted(ReviewedScore.objects.values_list("turn_id", "criterion", "draft_score", "final_score", "next_score"))
        == rows
    )


def test_markdown_table_names_every_criterion(project):
    drafter_project(project, count=6)
    table = markdown_table(compute(project))
    for c in CRITERIA:
        assert f"| {c} |" in table
    assert "Kappa" in table


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"criterion": "beauty"}, "criterion"),
        ({"since": "2024-13-01"}, "since"),
        ({"until": "yesterday"}, "until"),
        ({"since": "2024-02-01", "until": "2024-01-01"}, "until"),
        ({"model": "m" * (TEXT_MAX + 1)}, "model"),
        ({"prompt_version": "v" * (TEXT_MAX + 1)}, "prompt_version"),
        ({"import": "one"}, "import"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_bad_filters_are_refused_naming_the_field(params, field):
    with pytest.raises(InvalidInput) as caught:
        QualityFilters.parse(params, criteria=CRITERIA)
    assert field in caught.value.errors


def test_good_filters_parse():
    filters = QualityFilters.parse(
        {"criterion": "honesty", "import": "3", "since": "2024-01-01", "until": "2024-01-31", "model": "m"},
        criteria=CRITERIA,
    )
    assert filters.as_json() == {
        "criterion": "honesty",
        "prompt_version": None,
        "model": "m",
        "import": 3,
        "since": "2024-01-01",
        "until": "2024-01-31",
    }


def test_a_chain_saved_out_of_order_and_edited_after_submission_equals_the_rebuild(project, admin_user):
    from feedback.review.claims import sample_claim
    from feedback.review.revisions import revision_create
    from tests.factories import DraftFactory, SampleFactory

    (ann,) = reviewers(project, "ann")
    sample = SampleFactory.create(project=project, external_id="x0", turns=2, source_model="lvlm-a")
    turns = list(sample.turns.order_by("index"))
    for turn in turns:
        DraftFactory.create(turn=turn, scores=dict.fromkeys(CRITERIA, 4))
    assignment = sample_claim(project=project, reviewer=ann)
    assert assignment is not None
    edit: dict[str, Any] = {"decision": Decision.EDITED, "critique": "Short.", "refinement": ""}
    # Turn 1 first, then turn 0 (which submits): the round-to-round link is made either way.
    revision_create(
        assignment=assignment,
        turn=turns[1],
        author=ann,
        base_version=0,
        scores=dict.fromkeys(CRITERIA, 6),
        time_spent_ms=1000,
        **edit,
    )
    result = revision_create(
        assignment=assignment,
        turn=turns[0],
        author=ann,
        base_version=0,
        scores=dict.fromkeys(CRITERIA, 3),
        time_spent_ms=2000,
        **edit,
    )
    assert result.completed
    # An admin corrects turn 0 after the submission: the chain's latest counts, its time is summed.
    revision_create(
        assignment=result.revision.assignment,
        turn=turns[0],
        author=admin_user,
        base_version=1,
        scores=dict.fromkeys(CRITERIA, 2),
        time_spent_ms=500,
        **edit,
    )
    row = ReviewedTurn.objects.get(turn=turns[0])
    assert row.submitted and row.time_spent_ms == 2500 and row.revision.version == 2
    kept = compute(project)
    step = next(m for m in kept["models"] if m["model"] == "lvlm-a")["interaction"]["honesty"]
    assert step["n"] == 1 and step["mean_change"]["value"] == 4.0  # 2 → 6
    fields = ("turn_id", "criterion", "draft_score", "final_score", "next_score", "submitted", "shared")
    rows = sorted(ReviewedScore.objects.values_list(*fields))
    call_command("quality_rebuild", "--project", project.slug, verbosity=0)
    assert sorted(ReviewedScore.objects.values_list(*fields)) == rows
    assert ReviewedTurn.objects.get(turn=turns[0]).time_spent_ms == 2500
    assert compute(project) == kept


def test_a_scale_too_wide_for_the_figures_is_refused_by_name(project):
    project.score_max = 500
    project.save()
    with pytest.raises(InvalidInput) as caught:
        compute(project)
    assert "scale" in caught.value.errors


def test_a_later_turn_rejected_without_scores_saves_and_links_nothing(project):
    (ann,) = reviewers(project, "ann")
    scores = dict.fromkeys(CRITERIA, 5)
    build(
        project,
        [
            SamplePlan(
                reviews=[Review(ann, [TurnPlan(draft=scores), TurnPlan(draft=scores, decision=Decision.REJECTED)])]
            )
        ],
    )
    assert not ReviewedScore.objects.filter(next_score__isnull=False).exists()
    figures = compute(project)
    assert figures["drafter"]["decisions"]["rejected"]["value"] == 0.5
    assert figures["models"][0]["interaction"]["honesty"]["n"] == 0
