"""The cube (``quality.cube``) stays in step with the summary rows it counts: after reviews, edits
after submission, a second review, a review reopened, an adjudication, deletions by cascade or by
set-null, and a rebuild, the kept cells equal cells recomputed from the rows, and the figures equal
those of a fresh rebuild. Every change bumps the project's figures version."""

from __future__ import annotations

import pytest
from django.core.management import call_command

from feedback.models import ImportBatch, Turn
from feedback.review.models import Assignment, AssignmentState, Decision, Revision
from quality import cube
from quality.figures import compute
from quality.filters import QualityFilters
from quality.models import FinalCell, PairCell, ReviewedTurn, TurnCell
from tests.quality.quality_helpers import CRITERIA, Review, SamplePlan, TurnPlan, build, reviewers

pytestmark = pytest.mark.django_db

SUMS = {"cd_sum", "cd_sq", "rd_sum", "rd_sq"}


def cells(project) -> dict[str, list[tuple]]:
    """Every cell of the project's cube, without ids, the float sums rounded."""
    out = {}
    for model in (TurnCell, PairCell, FinalCell):
        names = [f.name for f in model._meta.concrete_fields if f.name not in ("id", "project")]
        out[model.__name__] = sorted(
            tuple(round(v, 9) if name in SUMS else v for name, v in zip(names, row, strict=True))
            for row in model.objects.filter(project=project).values_list(*names)
        )
    return out


def assert_in_step(project) -> dict[str, list[tuple]]:
    """The kept cube equals the cube recomputed from the rows (and is not empty of the rows' counts)."""
    kept = cells(project)
    cube.recompute(project.pk)
    assert cells(project) == kept
    counted = sum(row[-6] for row in kept["TurnCell"])  # n
    assert counted == ReviewedTurn.objects.filter(project=project, submitted=True).count()
    return kept


def plans(ann, bea, import_batch=None) -> list[SamplePlan]:
    """Every sample but the last two reviewed by both (the queue hands them out in this order)."""
    four, five = dict.fromkeys(CRITERIA, 4), dict.fromkeys(CRITERIA, 5)
    return [
        SamplePlan(
            reviews=[
                Review(ann, [TurnPlan(draft=four), TurnPlan(draft=five, decision=Decision.EDITED, final=four)]),
                Review(bea, [TurnPlan(draft=four), TurnPlan(draft=five)]),
            ]
        ),
        SamplePlan(
            reviews=[
                Review(ann, [TurnPlan(draft=four, decision=Decision.REJECTED)]),
                Review(
                    bea,
                    [
                        TurnPlan(
                            draft=four, decision=Decision.EDITED, final={**dict.fromkeys(CRITERIA, 4), "honesty": 2}
                        )
                    ],
                ),
            ],
            prompt_version="v2",
            draft_model="drafter-b",
            import_batch=import_batch,
        ),
        SamplePlan(
            reviews=[
                Review(ann, [TurnPlan(draft=five, decision=Decision.EDITED, final=four, critique="Other words.")]),
                Review(bea, [TurnPlan(draft=five)]),
            ],
            import_batch=import_batch,
        ),
        SamplePlan(reviews=[Review(bea, [TurnPlan(draft=None, decision=Decision.EDITED, final=five)])]),
        SamplePlan(reviews=[Review(bea, [TurnPlan(draft=four), TurnPlan(draft=four)], submit=False)]),
    ]


@pytest.fixture
def reviewed(project):
    project.reviews_required = 2
    project.save()
    ann, bea = reviewers(project, "ann", "bea")
    batch = ImportBatch.objects.create(project=project, format="dress", file_name="part.jsonl", status="completed")
    build(project, plans(ann, bea, batch))
    return project, ann, bea, batch


def test_reviews_keep_the_cube_in_step_and_bump_the_version(reviewed):
    project, *_ = reviewed
    kept = assert_in_step(project)
    assert kept["TurnCell"] and kept["PairCell"] and kept["FinalCell"]
    assert cube.version(project.pk) > 0
    # Only submitted reviews are counted: the unsubmitted sample's saved turn is a row, not a cell.
    assert ReviewedTurn.objects.filter(project=project, submitted=False).exists()


def test_an_edit_after_submission_moves_its_cells(reviewed, admin_user):
    from feedback.review.revisions import revision_create

    project, ann, *_ = reviewed
    before = compute(project)
    version = cube.version(project.pk)
    row = ReviewedTurn.objects.filter(project=project, reviewer=ann, submitted=True, turn_index=0).order_by("pk")[0]
    assignment = Assignment.objects.get(pk=row.assignment_id)
    revision_create(
        assignment=assignment,
        turn=row.turn,
        author=admin_user,
        base_version=row.revision.version,
        decision=Decision.EDITED,
        critique="Rewritten by the admin.",
        refinement="",
        scores=dict.fromkeys(CRITERIA, 1),
        time_spent_ms=10,
    )
    assert cube.version(project.pk) > version
    assert_in_step(project)
    after = compute(project)
    assert after["drafter"]["criteria"]["honesty"]["confusion"] != before["drafter"]["criteria"]["honesty"]["confusion"]
    call_command("quality_rebuild", "--project", project.slug, verbosity=0)
    assert compute(project) == after


def test_a_review_reopened_and_submitted_again_leaves_and_rejoins_the_cube(reviewed):
    project, ann, *_ = reviewed
    submitted = compute(project)
    assignment = Assignment.objects.filter(project=project, reviewer=ann, state=AssignmentState.SUBMITTED).order_by(
        "pk"
    )[0]
    assignment.state = AssignmentState.LEASED
    assignment.save(update_fields=["state"])
    assert_in_step(project)
    assert compute(project)["drafter"]["n"] < submitted["drafter"]["n"]
    assignment.state = AssignmentState.SUBMITTED
    assignment.save(update_fields=["state"])
    assert_in_step(project)
    assert compute(project) == submitted


def test_a_claim_changes_no_row_and_takes_no_lock(project):
    from feedback.review.claims import sample_claim
    from tests.factories import SampleFactory

    (ann,) = reviewers(project, "ann")
    SampleFactory.create(project=project, external_id="c0", turns=1)
    version = cube.version(project.pk)
    assert sample_claim(project=project, reviewer=ann) is not None
    assert cube.version(project.pk) == version


def test_an_adjudication_changes_no_figure(reviewed, admin_user):
    from feedback.review.adjudication import adjudication_save
    from feedback.review.models import AdjudicationCase

    project, *_ = reviewed
    before = compute(project)
    version = cube.version(project.pk)
    case = AdjudicationCase.objects.get(project=project)  # the rejected and the edited review of sample 1
    turn = Turn.objects.get(pk=int(next(iter(case.turns))))
    chosen = ReviewedTurn.objects.filter(turn=turn).order_by("pk")[0]
    adjudication_save(
        project=project, sample=turn.sample, turn=turn, adjudicator=admin_user, revision_id=chosen.revision_id
    )
    assert cube.version(project.pk) == version
    assert_in_step(project)
    assert compute(project) == before


@pytest.mark.parametrize("what", ["revision", "import"])
def test_deletions_recompute_the_cube_when_they_commit(reviewed, what, django_capture_on_commit_callbacks):
    """Deleted revisions take their rows with them; a deleted import sets the rows' import to null.
    (Samples, turns, drafts, assignments and reviewers with revisions are protected.)"""
    project, _, bea, batch = reviewed
    before = compute(project)
    version = cube.version(project.pk)
    with django_capture_on_commit_callbacks(execute=True) as hooks:
        if what == "revision":
            Revision.objects.filter(assignment__project=project, assignment__reviewer=bea).delete()
        else:
            batch.delete()
    assert len(hooks) == 1  # once, however many rows the deletion reached
    assert cube.version(project.pk) > version
    assert_in_step(project)
    after = compute(project)
    assert after != before
    call_command("quality_rebuild", "--project", project.slug, verbosity=0)
    assert compute(project) == after


def test_a_deletion_rolled_back_leaves_the_cube_as_it_was(reviewed, django_capture_on_commit_callbacks):
    from django.db import transaction

    project, *_ = reviewed
    kept = cells(project)
    with django_capture_on_commit_callbacks(execute=True) as hooks:
        try:
            with transaction.atomic():
                Revision.objects.filter(assignment__project=project).delete()
                raise RuntimeError("roll back")
        except RuntimeError:
            pass
    assert hooks == []
    assert cells(project) == kept
    # The next deletion is still recomputed (the rolled back one left no mark).
    with django_capture_on_commit_callbacks(execute=True) as hooks:
        Revision.objects.filter(assignment__project=project, turn__index=1).delete()
    assert len(hooks) == 1
    assert_in_step(project)


def test_the_rebuild_writes_the_cube_the_receivers_kept(reviewed):
    project, *_ = reviewed
    kept = cells(project)
    figures = compute(project)
    TurnCell.objects.filter(project=project).delete()
    call_command("quality_rebuild", "--project", project.slug, verbosity=0)
    assert cells(project) == kept
    assert compute(project) == figures


def test_filters_read_the_same_cells_as_the_rows(reviewed):
    """Each filter narrows the cube as it narrows the rows: the counts agree with the rows'."""
    project, _, _, batch = reviewed
    for params, rows in (
        ({"prompt_version": "v2"}, ReviewedTurn.objects.filter(prompt_version="v2")),
        ({"model": "drafter-b"}, ReviewedTurn.objects.filter(draft_model="drafter-b")),
        ({"import": str(batch.pk)}, ReviewedTurn.objects.filter(import_batch=batch)),
    ):
        figures = compute(project, QualityFilters.parse(params))
        drafted = rows.filter(project=project, submitted=True, draft__isnull=False).count()
        assert figures["drafter"]["n"] == drafted, params
