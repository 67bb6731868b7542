"""The Quality page: who may see it, what it shows of the figures (n beside every one, the reason
instead of a missing value, user text escaped), its filters, and the link from the project page.
The figures themselves are tested in the tests of ``quality.figures``; here a hand-written dict
(``page_fixture``) stands in where the page's rendering is what is tested."""

from __future__ import annotations

import html
import json
import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from feedback.models import Project, Role
from quality.templatetags.quality_figures import fig
from tests.conftest import make_user
from tests.quality import page_fixture
from tests.quality.seed import seed_reviewed_project

pytestmark = pytest.mark.django_db


@pytest.fixture
def fixed_figures(monkeypatch):
    """The page renders ``page_fixture.figures()`` whatever the filters; the filters it was asked
    for are recorded."""
    import quality.views

    asked = []

    def compute(project, filters):
        asked.append(filters)
        return page_fixture.figures(project.slug)

    monkeypatch.setattr(quality.views, "cached", compute)
    return asked


def url(project: Project, query: str = "") -> str:
    return reverse("quality:page", args=[project.slug]) + query


def embedded(content: str) -> dict:
    found = re.search(r'<script id="quality-figures" type="application/json">(.*?)</script>', content, re.S)
    assert found, "no figures data block"
    return json.loads(found.group(1))


def test_admins_and_researchers_see_the_page_others_do_not(client, project, fixed_figures):
    outsider = make_user("out", project=Project.objects.create(name="Other", slug="other"), role=Role.RESEARCHER)
    expected = {
        make_user("ada", project=project, role=Role.ADMIN): 200,
        make_user("rex", project=project, role=Role.RESEARCHER): 200,
        make_user("ann", project=project, role=Role.ANNOTATOR): 403,
        outsider: 404,
    }
    found = {}
    for user in expected:
        client.force_login(user)
        found[user] = client.get(url(project)).status_code
    assert found == expected
    client.logout()
    assert client.get(url(project)).status_code == 302  # to the login page


def test_the_project_page_links_to_it_for_admins_and_researchers_only(client, project):
    link = f'href="{url(project)}"'
    seen = {}
    for name, role in [("ada", Role.ADMIN), ("rex", Role.RESEARCHER), ("ann", Role.ANNOTATOR)]:
        client.force_login(make_user(name, project=project, role=role))
        seen[role] = link in client.get(reverse("feedback:project-detail", args=[project.slug])).content.decode()
    assert seen == {Role.ADMIN: True, Role.RESEARCHER: True, Role.ANNOTATOR: False}


def test_every_figure_has_its_n_and_an_undefined_one_its_reason_never_nan(client, project, fixed_figures):
    client.force_login(make_user("ada", project=project, role=Role.ADMIN))
    content = client.get(url(project)).content.decode()
    spans = re.findall(r'<span class="fig[ "].*?<span class="n">n=\d+</span></span>', content, re.S)
    assert len(spans) == content.count('<span class="fig'), "a figure without its n"
    assert not re.search(r"\bnan\b|\binf\b", content, re.I)
    text = html.unescape(re.sub(r"<[^>]+>", " ", content))
    for reason in [
        "all final scores equal: Spearman's rho is undefined",
        "fewer than 2 units with 2 values",
        "no edited refinement",
        "no second round",
        "no shared samples",
    ]:
        assert reason in text
    figures = page_fixture.figures(project.slug)
    accepted = figures["drafter"]["decisions"]["accepted"]
    assert f'data-fig="drafter.decisions.accepted" data-value="{accepted["value"]!r}" data-n="10"' in content
    assert '50.0 % <span class="ci">[20.0 %, 80.0 %]</span>' in content


def test_the_page_carries_the_figures_as_json_and_escapes_user_text(client, project, fixed_figures):
    client.force_login(make_user("ada", project=project, role=Role.ADMIN))
    content = client.get(url(project)).content.decode()
    assert embedded(content) == page_fixture.figures(project.slug)
    assert "<b>odd</b>" not in content and "<i>bob</i>" not in content
    assert "&lt;b&gt;odd&lt;/b&gt; model" in content and "&lt;i&gt;bob&lt;/i&gt;" in content


def test_filters_go_to_the_figures_and_a_bad_one_is_refused_naming_it(client, project, fixed_figures):
    client.force_login(make_user("ada", project=project, role=Role.ADMIN))
    batch = project.import_batches.create(format="native", file_name="a.jsonl", status="completed")
    good = f"?criterion=honesty&prompt_version=v2&model=m&import={batch.pk}&since=2026-01-01&until=2026-02-01"
    assert client.get(url(project, good)).status_code == 200
    chosen = fixed_figures[-1]
    assert (chosen.criterion, chosen.prompt_version, chosen.model, chosen.import_id) == ("honesty", "v2", "m", batch.pk)
    assert (str(chosen.since), str(chosen.until)) == ("2026-01-01", "2026-02-01")
    assert client.get(url(project, "?criterion=&model=")).status_code == 200  # the form's "all"
    for query, field in [
        ("?since=yesterday", "since"),
        ("?criterion=beauty", "criterion"),
        ("?model=" + "m" * 201, "model"),
        ("?import=one", "import"),
        ("?since=2026-02-01&until=2026-01-01", "until"),
        ("?colour=red", "colour"),
    ]:
        response = client.get(url(project, query))
        assert response.status_code == 400, query
        error = re.search(r'<p class="error" id="filter-error">(.*?)</p>', response.content.decode(), re.S)
        assert error and html.unescape(error.group(1)).startswith(f"{field}: "), (query, error and error.group(1))
        assert fixed_figures[-1].criterion is None, "the page shows the unfiltered figures under the error"
        assert 'id="plot-scores"' in response.content.decode()


def test_the_figure_tag_writes_values_intervals_and_reasons():
    assert 'data-value="0.25"' in fig({"value": 0.25, "n": 4, "ci": [0.0, 0.5], "undefined": None}, "rate")
    assert "25.0 % <span" in fig({"value": 0.25, "n": 4, "ci": None, "undefined": None}, "rate")
    assert "+0.30" in fig({"value": 0.3, "n": 4, "ci": None, "undefined": None}, "signed")
    nan = fig({"value": float("nan"), "n": 3, "ci": None, "undefined": None})
    assert "nan" not in nan.lower() and "no value" in nan and "n=3" in nan
    assert "a &lt;reason&gt;" in fig({"value": None, "n": 0, "ci": None, "undefined": "a <reason>"})
    assert "—" in fig(None)


def test_the_page_runs_the_same_number_of_queries_whatever_the_project_holds(client):
    counts = {}
    for slug, samples in [("small", 4), ("larger", 16)]:
        project, _ = seed_reviewed_project(slug=slug, samples=samples)
        client.force_login(project.memberships.get(role=Role.RESEARCHER).user)
        with CaptureQueriesContext(connection) as queries:
            response = client.get(url(project, "?prompt_version=v2"))
        assert response.status_code == 200
        counts[slug] = len(queries)
        assert embedded(response.content.decode())["drafter"]["n"] > 0
    assert counts["small"] == counts["larger"], counts
