"""The Quality page of a reviewed project in a real Chromium: every plot drawn by the vendored
Vega-Lite (SVG marks in each container), under the strict Content-Security-Policy with no violation
and no script error; a filter changes the figures; the page, its plots and the JSON API agree.

With ANNOTATOR_QUALITY_SCREENSHOT=<path> the test also saves a screenshot of the page there
(docs/quality.png is made this way)."""

from __future__ import annotations

import os
import re

import pytest

from feedback.models import Role
from tests.browser.conftest import wait_until
from tests.browser.test_csp_in_browser import Watch, log_in
from tests.conftest import make_user
from tests.quality import page_fixture
from tests.quality.seed import seed_reviewed_project

pytestmark = pytest.mark.django_db(transaction=True)

PLOTS = ["plot-scores", "plot-confusion", "plot-edits", "plot-over-time", "plot-models", "plot-interaction"]
DRAWN = "document.body.dataset.plots === 'done'"


def plot_states(page) -> dict[str, list]:
    """Each plot container: its state, how many SVG or canvas elements it holds, and how many
    marks (bars, cells, points, lines, rules) are drawn in them."""
    return page.evaluate(
        """Object.fromEntries([...document.querySelectorAll('.plot')].map(p => [p.id, [
            p.dataset.state,
            p.querySelectorAll('svg, canvas').length,
            p.querySelectorAll('.role-mark path, .role-mark line, .role-mark text').length > 0,
        ]]))"""
    )


def heatmap_total(page) -> int:
    """The sum of the counts the confusion heatmap writes in its cells (every criterion)."""
    texts = page.evaluate(
        "[...document.querySelectorAll('#plot-confusion .mark-text.role-mark text')].map(t => t.textContent)"
    )
    return sum(int(text) for text in texts)


def shown(page, name: str) -> float:
    return float(page.locator(f'[data-fig="{name}"]').get_attribute("data-value"))


def api(page, base: str, slug: str, query: str = "") -> dict:
    """The API's answer, asked with the page's session."""
    response = page.request.get(f"{base}/api/projects/{slug}/quality/{query}")
    assert response.status == 200, response.text()
    return response.json()


def confusion_total(figures: dict) -> int:
    return sum(sum(map(sum, c["confusion"]["counts"])) for c in figures["drafter"]["criteria"].values())


def test_the_quality_page_draws_its_plots_and_agrees_with_the_api(live_server, page):
    project, logins = seed_reviewed_project()
    base, slug = live_server.url, project.slug
    watch = Watch(page)
    log_in(page, base, "researcher", logins["researcher"])
    page.goto(f"{base}/projects/{slug}/")
    page.click("#quality-link")
    problems = watch.visit(page.url)
    wait_until(page, DRAWN)
    assert plot_states(page) == {plot: ["drawn", 1, True] for plot in PLOTS}
    problems += page.evaluate("window.__cspViolations") + watch.console + watch.errors
    assert problems == []

    # The page carries the API's figures, shows them in its tables and draws them in its plots.
    everything = api(page, base, slug)
    assert page.evaluate("JSON.parse(document.getElementById('quality-figures').textContent)") == everything
    drafter = everything["drafter"]
    assert int(page.locator("#drafter-n").inner_text()) == drafter["n"] > 0
    assert shown(page, "drafter.decisions.accepted") == drafter["decisions"]["accepted"]["value"]
    assert shown(page, "drafter.text.critique.mean") == drafter["text"]["critique"]["mean"]["value"]
    for criterion, figures in drafter["criteria"].items():
        row = page.locator(f'#agreement tr[data-criterion="{criterion}"]')
        assert int(row.locator("td").nth(1).inner_text()) == figures["n"]
    assert heatmap_total(page) == confusion_total(everything) > 0
    assert page.locator("#annotators tbody tr").count() == len(everything["reviewers"]["annotators"]) == 3
    if os.environ.get("ANNOTATOR_QUALITY_SCREENSHOT"):
        page.set_viewport_size({"width": 1400, "height": 900})
        page.wait_for_timeout(300)
        page.screenshot(path=os.environ["ANNOTATOR_QUALITY_SCREENSHOT"], full_page=True)

    # A filter: only the drafts of prompt version v2. The figures change, and still agree.
    page.select_option("select[name=prompt_version]", "v2")
    with page.expect_navigation():
        page.click("#filters button[type=submit]")
    wait_until(page, DRAWN)
    assert re.search(r"[?&]prompt_version=v2(&|$)", page.url)
    filtered = api(page, base, slug, "?prompt_version=v2")
    assert filtered["filters"]["prompt_version"] == "v2"
    assert api(page, base, slug, "?" + page.locator("#api-link").get_attribute("href").split("?")[1]) == filtered
    assert 0 < filtered["drafter"]["n"] < drafter["n"]
    assert int(page.locator("#drafter-n").inner_text()) == filtered["drafter"]["n"]
    assert shown(page, "drafter.decisions.accepted") == filtered["drafter"]["decisions"]["accepted"]["value"]
    assert heatmap_total(page) == confusion_total(filtered) < confusion_total(everything)
    assert [row["key"] for row in filtered["drafter"]["by"]["prompt_version"]] == ["v2"]
    assert plot_states(page) == {plot: ["drawn", 1, True] for plot in PLOTS}

    # And one criterion: each plot by criterion keeps one small chart, the agreement table one row.
    page.select_option("select[name=criterion]", "honesty")
    with page.expect_navigation():
        page.click("#filters button[type=submit]")
    wait_until(page, DRAWN)
    one = api(page, base, slug, "?prompt_version=v2&criterion=honesty")
    assert list(one["drafter"]["criteria"]) == ["honesty"]
    assert page.locator("#agreement tbody tr").count() == 1
    assert heatmap_total(page) == confusion_total(one) < confusion_total(filtered)
    facets = "document.querySelectorAll('#plot-confusion .role-column-header text').length"
    assert page.evaluate(facets) == 1
    assert page.evaluate("window.__cspViolations") == [] and watch.console == [] and watch.errors == []


def test_a_bad_filter_is_named_and_the_page_still_draws(live_server, page):
    project, logins = seed_reviewed_project(samples=8)
    watch = Watch(page)
    log_in(page, live_server.url, "admin", logins["admin"])
    response = page.goto(f"{live_server.url}/projects/{project.slug}/quality/?since=last-week")
    assert response is not None and response.status == 400
    wait_until(page, DRAWN)
    assert page.locator("#filter-error").inner_text().startswith("since: ")
    assert plot_states(page)["plot-scores"] == ["drawn", 1, True]
    assert page.evaluate("window.__cspViolations") == [] and watch.errors == []


def test_a_project_without_reviews_says_so_in_every_plot(live_server, page, project):
    make_user("rex", project=project, role=Role.RESEARCHER)
    watch = Watch(page)
    log_in(page, live_server.url, "rex", "pw-rex")
    assert watch.visit(f"{live_server.url}/projects/{project.slug}/quality/") == []
    wait_until(page, DRAWN)
    assert plot_states(page) == {plot: ["empty", 0, False] for plot in PLOTS}
    assert page.locator(".plot-empty").first.inner_text() == "Nothing to plot for these filters."
    assert page.evaluate("window.__cspViolations") == [] and watch.errors == []


def test_undefined_figures_and_odd_names_draw_without_an_error(live_server, page, project, monkeypatch):
    """Hand-written figures: undefined values (None, with their reasons), a week without kappa, a
    model with no second round, markup in names. The plots leave out what is undefined."""
    import quality.views

    monkeypatch.setattr(quality.views, "cached", lambda project, filters: page_fixture.figures(project.slug))
    make_user("rex", project=project, role=Role.RESEARCHER)
    watch = Watch(page)
    log_in(page, live_server.url, "rex", "pw-rex")
    assert watch.visit(f"{live_server.url}/projects/{project.slug}/quality/") == []
    wait_until(page, DRAWN)
    assert plot_states(page) == {plot: ["drawn", 1, True] for plot in PLOTS}
    assert heatmap_total(page) == confusion_total(page_fixture.figures(project.slug))
    # The model without a second round has no bar; its name is drawn as text, not markup.
    labels = page.evaluate(
        "[...document.querySelectorAll('#plot-models .role-axis-label text')].map(t => t.textContent)"
    )
    assert "<b>odd</b> model" in labels
    assert page.locator("#plot-models b, #plot-interaction b").count() == 0
    bars = "document.querySelectorAll('#plot-interaction .mark-rect.role-mark path').length"
    assert page.evaluate(bars) == 2 * 3  # one model, two criteria, three outcomes
    # A tooltip, styled by the page's own stylesheet (vega-tooltip's injected style is off).
    page.hover("#plot-confusion .mark-text.role-mark text >> nth=0")
    wait_until(page, "document.querySelector('#vg-tooltip-element.visible') !== null")
    assert "turns" in page.locator("#vg-tooltip-element").inner_text()
    assert page.evaluate("window.__cspViolations") == [] and watch.console == [] and watch.errors == []
