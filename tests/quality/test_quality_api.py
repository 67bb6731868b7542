"""GET /api/projects/<slug>/quality/: admins and researchers only, filters as query parameters
(refused with 400 naming the field), the same figures as compute(), declared in the OpenAPI
document."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from rest_framework.test import APIClient

from feedback.models import Project, Role
from quality.figures import compute
from quality.filters import TEXT_MAX, QualityFilters
from tests.conftest import make_user, token_client
from tests.quality.quality_helpers import CRITERIA, Review, SamplePlan, TurnPlan, build, reviewers

pytestmark = pytest.mark.django_db

URL = "/api/projects/test/quality/"


@pytest.fixture
def reviewed(project):
    (ann,) = reviewers(project, "ann-reviewer")
    scores = dict.fromkeys(CRITERIA, 5)
    build(
        project,
        [
            SamplePlan(prompt_version="v1", reviews=[Review(ann, [TurnPlan(draft=scores)])]),
            SamplePlan(
                prompt_version="v2",
                reviews=[Review(ann, [TurnPlan(draft=scores, decision="edited", final={**scores, "honesty": 3})])],
            ),
        ],
    )
    return project


@pytest.mark.parametrize("who", ["researcher", "admin"])
def test_researchers_and_admins_get_the_figures_of_compute(reviewed, researcher_user, admin_user, who):
    user = researcher_user if who == "researcher" else admin_user
    response = token_client(user).get(URL, {"prompt_version": "v2"})
    assert response.status_code == 200
    body = response.json()
    assert body == compute(reviewed, QualityFilters(prompt_version="v2"))
    assert body["drafter"]["n"] == 1
    assert body["filters"]["prompt_version"] == "v2"


def test_annotators_are_refused_and_outsiders_told_nothing(reviewed, annotator_user):
    assert token_client(annotator_user).get(URL).status_code == 403
    other = Project.objects.create(name="Other", slug="other")
    outsider = make_user("olga", project=other, role=Role.RESEARCHER)
    assert token_client(outsider).get(URL).status_code == 404


def test_anonymous_callers_are_refused(reviewed):
    assert APIClient().get(URL).status_code == 401


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"criterion": "beauty"}, "criterion"),
        ({"since": "31/12/2024"}, "since"),
        ({"until": "2024-02-30"}, "until"),
        ({"model": "x" * (TEXT_MAX + 1)}, "model"),
        ({"prompt_version": "v\x001"}, "prompt_version"),
        ({"import": "-1"}, "import"),
        ({"import": "9" * 40}, "import"),
        ({"page": "2"}, "page"),
    ],
)
def test_bad_filters_answer_400_naming_the_field(reviewed, researcher_user, params, field):
    response = token_client(researcher_user).get(URL, params)
    assert response.status_code == 400
    assert field in response.json()["errors"]


def test_a_filter_given_twice_is_refused(reviewed, researcher_user):
    response = token_client(researcher_user).get(URL + "?criterion=honesty&criterion=helpfulness")
    assert response.status_code == 400
    assert "criterion" in response.json()["errors"]


def test_schema_documents_the_quality_endpoint(researcher_user, tmp_path):
    response = token_client(researcher_user).get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    operation = response.json()["paths"]["/api/projects/{slug}/quality/"]["get"]
    assert {"200", "400", "401", "403", "404"} <= set(operation["responses"])
    names = {p["name"] for p in operation["parameters"]}
    assert {"criterion", "prompt_version", "model", "import", "since", "until"} <= names
    call_command("spectacular", "--validate", "--file", str(tmp_path / "schema.yml"))
