"""manage.py quality_report and quality_rebuild."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from quality.figures import compute
from quality.filters import QualityFilters
from quality.models import ReviewedTurn
from tests.quality.quality_helpers import CRITERIA, Review, SamplePlan, TurnPlan, build, reviewers

pytestmark = pytest.mark.django_db


@pytest.fixture
def reviewed(project):
    (ann,) = reviewers(project, "ann")
    scores = dict.fromkeys(CRITERIA, 4)
    build(
        project,
        [
            SamplePlan(reviews=[Review(ann, [TurnPlan(draft=scores)])]),
            SamplePlan(
                reviews=[Review(ann, [TurnPlan(draft=scores, decision="edited", final={**scores, "honesty": 6})])]
            ),
        ],
    )
    return project


def run(*args: str) -> str:
    out = StringIO()
    call_command("quality_report", *args, stdout=out)
    return out.getvalue()


def test_json_report_equals_compute(reviewed):
    body = json.loads(run("--project", "test", "--criterion", "honesty"))
    assert body == json.loads(json.dumps(compute(reviewed, QualityFilters(criterion="honesty"))))
    assert body["drafter"]["criteria"]["honesty"]["exact"]["value"] == 0.5


def test_markdown_report(reviewed):
    text = run("--project", "test", "--format", "markdown")
    assert "| honesty | 2 |" in text
    assert "Reviewed turns with a draft: 2" in text


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (["--criterion", "beauty"], "criterion"),
        (["--since", "soon"], "since"),
        (["--import", "x"], "import"),
    ],
)
def test_bad_filters_name_the_field(reviewed, args, field):
    with pytest.raises(CommandError, match=field):
        run("--project", "test", *args)


def test_unknown_project():
    with pytest.raises(CommandError, match="project"):
        run("--project", "nope")


def test_rebuild_all_projects(reviewed):
    ReviewedTurn.objects.all().delete()
    out = StringIO()
    call_command("quality_rebuild", stdout=out)
    assert "test: 2 reviewed turns" in out.getvalue()
    assert compute(reviewed)["drafter"]["n"] == 2
