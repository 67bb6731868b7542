"""Prompt versions as data: v1 in every project, new versions that draft and are recorded, the text
frozen once drafted, placeholders checked by name, bounds, the pages, the API, the command, roles."""

from __future__ import annotations

import hashlib
import io
import re
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client
from django.urls import reverse

from feedback.drafting import prompts, service, versions
from feedback.drafting.models import Draft, PromptVersion
from feedback.drafting.service import CallGate, draft_turn, drafter_settings
from feedback.errors import Conflict, InvalidInput, NotFound
from feedback.jobs.service import job_create
from feedback.models import Project, Role
from feedback.projects.service import project_create, project_update
from tests.conftest import make_user, token_client
from tests.factories import SampleFactory
from tests.simulator import llm_simulator_fixture  # noqa: F401

pytestmark = pytest.mark.django_db

V1 = prompts.FEEDBACK_V1
NEW_USER = V1.user.replace("Review the response under review.", "Judge the answer below, strictly.")


@pytest.fixture(autouse=True)
def fresh_cache():
    prompts.clear_cache()
    yield
    prompts.clear_cache()


@pytest.fixture(autouse=True)
def simulator_connections(request, settings):
    if "llm_simulator" in request.fixturenames:
        url = request.getfixturevalue("llm_simulator").url
        settings.LLM_BASE_URL = settings.RESPONDER_BASE_URL = url


@pytest.fixture
def sample(project):
    return SampleFactory.create(project=project, external_id="s1")


def new_version(project, **changes):
    values: dict[str, Any] = {"system": V1.system, "user": NEW_USER, "note": "stricter wording"}
    values.update(changes)
    return versions.prompt_version_create(project=project, **values)


def draft(project, sample, **overrides) -> Draft:
    cs = drafter_settings(project, **overrides)
    return draft_turn(turn=sample.turns.get(index=0), sample=sample, project=project, cs=cs, gate=CallGate())


# --- v1 in every project -----------------------------------------------------------------------------


def test_v1_is_version_1_of_a_project_with_the_hash_drafts_already_record(project):
    v1 = versions.versions_of(project).get()
    expected = hashlib.sha256(f"v1\x1f{V1.system}\x1f{V1.user}".encode()).hexdigest()
    assert (v1.number, v1.name, v1.sha256, v1.system, v1.user) == (1, "v1", expected, V1.system, V1.user)
    assert v1.locked_at is not None


def test_project_creation_makes_v1_and_a_copy_keeps_the_source_versions(admin_user):
    made = project_create(user=admin_user, slug="fresh", name="Fresh")
    assert list(PromptVersion.objects.filter(project=made).values_list("number", "name")) == [(1, "v1")]
    v2 = new_version(made, note="")
    versions.prompt_version_set_default(project=made, version=v2)
    copy = project_create(user=admin_user, slug="copy", name="Copy", from_project=Project.objects.get(pk=made.pk))
    rows = list(PromptVersion.objects.filter(project=copy).values_list("number", "name", "sha256"))
    assert rows == [(1, "v1", V1.hash), (2, "v2", v2.sha256)]
    assert copy.prompt_version == "v2"


def test_the_migration_gives_existing_projects_v1(project):
    """The data migration's function, run on a project without versions."""
    from importlib import import_module

    from django.apps import apps

    PromptVersion.objects.all().delete()
    migration = import_module("feedback.migrations.0012_prompt_versions")
    migration.shipped_v1_for_every_project(apps, None)
    assert list(PromptVersion.objects.filter(project=project).values_list("name", "sha256")) == [("v1", V1.hash)]


# --- a new version drafts, and the draft records it ------------------------------------------------------


def test_a_new_version_drafts_and_the_draft_records_its_name_and_hash(project, sample, llm_simulator, monkeypatch):
    sent: list[list[dict]] = []
    real_chat = service.chat

    def recording_chat(**kwargs):
        sent.append(kwargs["messages"])
        return real_chat(**kwargs)

    monkeypatch.setattr(service, "chat", recording_chat)
    v2 = new_version(project)
    assert (v2.number, v2.name) == (2, "v2")
    assert v2.sha256 == hashlib.sha256(f"v2\x1f{V1.system}\x1f{NEW_USER}".encode()).hexdigest()
    made = draft(project, sample, prompt_version="v2")
    assert made.succeeded
    assert (made.prompt_version, made.prompt_hash) == ("v2", v2.sha256)
    assert sent[-1][-1]["content"].startswith("Judge the answer below, strictly.")
    v1_draft = draft(project, sample)
    assert (v1_draft.prompt_version, v1_draft.prompt_hash) == ("v1", V1.hash)
    assert sent[-1][-1]["content"].startswith("Review the response under review.")
    v2.refresh_from_db()
    assert v2.locked_at is not None


def test_the_project_default_chooses_the_version_a_job_drafts_with(project, sample, admin_user):
    v2 = new_version(project)
    versions.prompt_version_set_default(project=project, version=v2)
    project.refresh_from_db()
    job = job_create(project=project, kind="draft", selection={"status": "never"}, user=admin_user)
    assert job.llm_settings["drafter"]["prompt_version"] == "v2"
    with pytest.raises(InvalidInput) as refused:
        job_create(
            project=project,
            kind="draft",
            selection={"status": "never"},
            drafter={"prompt_version": "v9"},
            user=admin_user,
        )
    assert "drafter.prompt_version" in refused.value.errors


def test_the_settings_take_only_the_project_own_versions(project):
    new_version(project)
    assert project_update(project=project, values={"prompt_version": "v2"}).prompt_version == "v2"
    with pytest.raises(InvalidInput) as refused:
        project_update(project=project, values={"prompt_version": "v3"})
    assert "prompt_version" in refused.value.errors


# --- a version that drafted never changes -------------------------------------------------------------


def test_an_edited_template_that_drafted_is_refused(project, sample, llm_simulator):
    v2 = new_version(project)
    draft(project, sample, prompt_version="v2")
    with pytest.raises(Conflict, match="v2 is never edited: it drafted 1 turn"):
        versions.prompt_version_edit(version=v2, user=NEW_USER + "\nBe brief.")
    v2.refresh_from_db()
    assert v2.user == NEW_USER
    # the note is not the template: it may change
    assert versions.prompt_version_edit(version=v2, note="kept").note == "kept"


def test_a_version_that_never_drafted_may_be_edited_and_gets_its_new_hash(project):
    v2 = new_version(project)
    edited = versions.prompt_version_edit(version=v2, user=NEW_USER + "\nBe brief.")
    assert edited.sha256 == prompts.PromptTemplate("v2", V1.system, NEW_USER + "\nBe brief.").hash != v2.sha256


def test_the_shipped_v1_is_never_edited(project):
    v1 = versions.version_get(project, 1)
    with pytest.raises(Conflict, match="shipped"):
        versions.prompt_version_edit(version=v1, system="Another system text.")


def test_the_cache_keeps_only_locked_versions_so_an_edit_before_drafting_is_seen(project):
    v2 = new_version(project)
    assert prompts.template_for(project, "v2").user == NEW_USER
    versions.prompt_version_edit(version=v2, user=NEW_USER + "\nBe brief.")
    assert prompts.template_for(project, "v2").user.endswith("Be brief.")
    locked = prompts.template_for(project, "v2", lock=True)
    PromptVersion.objects.filter(pk=v2.pk).update(user="changed behind the service's back {question}")
    assert prompts.template_for(project, "v2") == locked  # from the cache: a locked version never changes


# --- placeholders ------------------------------------------------------------------------------------


def test_unknown_placeholders_are_named(project):
    with pytest.raises(InvalidInput) as refused:
        new_version(project, user=NEW_USER + " {colour} {criteria.__class__}", system="Be fair {mood}.")
    errors = refused.value.errors
    assert "{colour}" in errors["user"][0] and "{criteria.__class__}" in errors["user"][0]
    assert "{mood}" in errors["system"][0]


def test_missing_required_placeholders_are_named(project):
    with pytest.raises(InvalidInput) as refused:
        new_version(project, user="Rate this: {question}")
    assert refused.value.errors == {"user": ["missing required placeholders {response}, {schema}"]}


@pytest.mark.parametrize(
    "text,said",
    [
        ("{question} {response} {schema} {low:>999999999}", "{low:>999999999}"),
        ("{question} {response} {schema} {low!r}", "{low!r}"),
        ("{question} {response} {schema} {0}", "{0}"),
        ("{question} {response} {schema} {", "Single '{'"),
        ("{question} {response} {schema} }", "Single '}'"),
        ("{question} {response} {schema} {guidelines}{guidelines}{guidelines}{guidelines}", "more than 3 times"),
    ],
)
def test_format_specs_conversions_stray_braces_and_repeats_are_refused(project, text, said):
    with pytest.raises(InvalidInput) as refused:
        new_version(project, user=text)
    assert said in refused.value.errors["user"][0]


def test_literal_braces_are_written_doubled(project, sample):
    v2 = new_version(project, user='Answer like {{"critique": ...}}.\n{question}\n{response}\n{schema}')
    from feedback.prompts.selectors import preview

    shown = preview(project=project, system=v2.system, user=v2.user, sample_id=sample.pk)
    assert shown.user.startswith('Answer like {"critique": ...}.\n' + sample.turns.get(index=0).user_message)


# --- bounds ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "changes,field",
    [
        ({"system": "x" * (versions.TEXT_MAX + 1)}, "system"),
        ({"user": NEW_USER + "x" * versions.TEXT_MAX}, "user"),
        ({"note": "n" * (versions.NOTE_MAX + 1)}, "note"),
        ({"name": "n" * (versions.NAME_MAX + 1)}, "name"),
        ({"name": "has space"}, "name"),
        ({"name": "v7"}, "name"),
        ({"name": "v1"}, "name"),
        ({"system": ""}, "system"),
        ({"user": 5}, "user"),
    ],
)
def test_bounds_are_refused_naming_the_field(project, changes, field):
    with pytest.raises(InvalidInput) as refused:
        new_version(project, **changes)
    assert field in refused.value.errors
    assert PromptVersion.objects.filter(project=project).count() == 1


def test_a_taken_name_is_refused(project):
    new_version(project, name="strict")
    with pytest.raises(InvalidInput) as refused:
        new_version(project, name="strict")
    assert refused.value.errors["name"] == ["'strict' is taken"]


def test_versions_per_project_are_bounded(project, monkeypatch):
    monkeypatch.setattr(versions, "VERSIONS_MAX", 3)
    new_version(project)
    new_version(project)
    with pytest.raises(InvalidInput) as refused:
        new_version(project)
    assert refused.value.errors == {"project": ["a project holds at most 3 prompt versions"]}


def test_a_version_of_another_project_is_not_found(project):
    other = Project.objects.create(name="Other", slug="other")
    new_version(other)
    with pytest.raises(NotFound):
        versions.version_get(project, 2)


# --- pages -------------------------------------------------------------------------------------------


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_pages_list_view_diff_and_new_version_with_preview(project, sample, admin_user):
    client = client_for(admin_user)
    slug = project.slug
    page = client.get(reverse("feedback:prompt-new", args=[slug]) + "?from=1")
    assert page.status_code == 200
    assert b'hx-post="/projects/test/prompts/preview/"' in page.content
    assert sample.turns.get(index=0).user_message.encode() in page.content  # the preview of v1, rendered at once
    preview = client.post(
        reverse("feedback:prompt-preview", args=[slug]),
        {"system": V1.system, "user": NEW_USER, "sample": sample.pk},
        HTTP_HX_REQUEST="true",
    )
    assert preview.status_code == 200 and b"Judge the answer below, strictly." in preview.content
    assert b"<html" not in preview.content
    bad = client.post(
        reverse("feedback:prompt-preview", args=[slug]), {"system": V1.system, "user": "{question} {oops}"}
    )
    assert b"{oops}" in bad.content and b"preview-error" in bad.content
    saved = client.post(
        reverse("feedback:prompt-new", args=[slug]) + "?from=1",
        {"system": V1.system, "user": NEW_USER, "note": "stricter", "name": "", "sample": sample.pk, "action": "save"},
    )
    assert saved.status_code == 302 and saved["Location"] == reverse("feedback:prompt-detail", args=[slug, 2])
    v2 = PromptVersion.objects.get(project=project, number=2)
    assert (v2.author, v2.based_on, v2.note) == (admin_user, 1, "stricter")
    listing = client.get(reverse("feedback:prompt-list", args=[slug]))
    assert listing.status_code == 200 and b"stricter" in listing.content
    detail = client.get(reverse("feedback:prompt-detail", args=[slug, 2]))
    assert v2.sha256.encode() in detail.content
    diff = client.get(reverse("feedback:prompt-diff", args=[slug]) + "?a=1&b=2")
    assert b"<del>Review</del>" in diff.content or b"<del>Review the response under review.</del>" in diff.content
    assert b"<ins>" in diff.content and b"strictly." in diff.content
    made_default = client.post(reverse("feedback:prompt-default", args=[slug, 2]))
    assert made_default.status_code == 302
    project.refresh_from_db()
    assert project.prompt_version == "v2"


def test_the_new_version_page_names_a_bad_placeholder(project, sample, admin_user):
    response = client_for(admin_user).post(
        reverse("feedback:prompt-new", args=[project.slug]),
        {"system": V1.system, "user": "{question} {response}", "sample": sample.pk, "action": "save"},
    )
    assert response.status_code == 400
    assert b"missing required placeholder {schema}" in response.content


def test_a_bad_diff_or_version_number_is_named(project, admin_user):
    client = client_for(admin_user)
    assert client.get(reverse("feedback:prompt-diff", args=[project.slug]) + "?a=x&b=1").status_code == 400
    assert client.get(reverse("feedback:prompt-diff", args=[project.slug]) + "?a=1&b=9").status_code == 404
    assert client.get(reverse("feedback:prompt-detail", args=[project.slug, 9])).status_code == 404


def test_roles_researchers_read_annotators_and_outsiders_do_not(project, sample, researcher_user, annotator_user):
    reader = client_for(researcher_user)
    slug = project.slug
    assert reader.get(reverse("feedback:prompt-list", args=[slug])).status_code == 200
    assert reader.get(reverse("feedback:prompt-detail", args=[slug, 1])).status_code == 200
    assert reader.get(reverse("feedback:prompt-new", args=[slug])).status_code == 403
    assert reader.post(reverse("feedback:prompt-default", args=[slug, 1])).status_code == 403
    assert (
        reader.post(reverse("feedback:prompt-new", args=[slug]), {"system": "s", "user": NEW_USER}).status_code == 403
    )
    annotator = client_for(annotator_user)
    assert annotator.get(reverse("feedback:prompt-list", args=[slug])).status_code == 403
    outsider = client_for(make_user("olga", project=Project.objects.create(name="O", slug="o"), role=Role.RESEARCHER))
    assert outsider.get(reverse("feedback:prompt-list", args=[slug])).status_code == 404
    assert PromptVersion.objects.filter(project=project).count() == 1


# --- API ---------------------------------------------------------------------------------------------


def test_api_list_create_detail_preview_default(project, sample, admin_user):
    api = token_client(admin_user)
    base = f"/api/projects/{project.slug}/prompts/"
    listed = api.get(base)
    assert listed.status_code == 200 and [v["name"] for v in listed.json()] == ["v1"]
    assert listed.json()[0]["is_default"] and listed.json()[0]["locked"]
    made = api.post(base, {"from_version": 1, "user": NEW_USER, "note": "via the API"}, format="json")
    assert made.status_code == 201, made.json()
    body = made.json()
    assert (body["number"], body["name"], body["system"], body["author"]) == (2, "v2", V1.system, admin_user.username)
    assert api.get(f"{base}2/").json()["sha256"] == body["sha256"]
    shown = api.post(f"{base}preview/", {"version": 2, "sample": sample.pk}, format="json")
    assert shown.status_code == 200 and "Judge the answer below, strictly." in shown.json()["user"]
    refused = api.post(f"{base}preview/", {"user": "{question} {nope}"}, format="json")
    assert refused.status_code == 400 and "user" in refused.json()["errors"]
    assert api.post(f"{base}2/default/").json()["is_default"] is True
    edited = api.patch(f"{base}2/", {"note": "renamed note"}, format="json")
    assert edited.status_code == 200 and edited.json()["note"] == "renamed note"


def test_api_refusals_name_the_field(project, admin_user):
    api = token_client(admin_user)
    base = f"/api/projects/{project.slug}/prompts/"
    unknown = api.post(base, {"user": NEW_USER + "{shoe_size}"}, format="json")
    assert unknown.status_code == 400 and "{shoe_size}" in unknown.json()["errors"]["user"][0]
    long_note = api.post(base, {"note": "n" * (versions.NOTE_MAX + 1)}, format="json")
    assert long_note.status_code == 400 and "note" in long_note.json()["errors"]
    frozen = api.patch(f"{base}1/", {"system": "Another."}, format="json")
    assert frozen.status_code == 409 and "shipped" in frozen.json()["errors"]["system"][0]
    assert api.get(f"{base}7/").status_code == 404


def test_api_roles(project, researcher_user, annotator_user):
    base = f"/api/projects/{project.slug}/prompts/"
    reader = token_client(researcher_user)
    assert reader.get(base).status_code == 200
    assert reader.post(base, {"note": "x"}, format="json").status_code == 403
    assert reader.post(f"{base}1/default/").status_code == 403
    assert reader.patch(f"{base}1/", {"note": "x"}, format="json").status_code == 403
    assert token_client(annotator_user).get(base).status_code == 403


# --- the command -------------------------------------------------------------------------------------


def run(*args) -> str:
    out = io.StringIO()
    call_command("prompt_version", *args, stdout=out)
    return out.getvalue()


def test_the_command_lists_shows_creates_and_sets_the_default(project, sample, tmp_path: Path):
    user_file = tmp_path / "user.txt"
    user_file.write_text(NEW_USER, encoding="utf-8")
    said = run("--project", project.slug, "create", "--from", "1", "--user-file", str(user_file), "--note", "cli")
    v2 = PromptVersion.objects.get(project=project, number=2)
    assert f"v2 saved as version 2 (sha256 {v2.sha256})" in said
    assert (v2.system, v2.user, v2.note) == (V1.system, NEW_USER, "cli")
    listing = run("--project", project.slug, "list")
    assert "v1" in listing and "v2" in listing and "default" in listing
    assert NEW_USER in run("--project", project.slug, "show", "2")
    run("--project", project.slug, "default", "2")
    project.refresh_from_db()
    assert project.prompt_version == "v2"
    assert "Judge the answer below, strictly." in run("--project", project.slug, "preview", "--sample", str(sample.pk))
    user_file.write_text("{question} {response}", encoding="utf-8")
    with pytest.raises(CommandError, match=re.escape("user: missing required placeholder {schema}")):
        run("--project", project.slug, "create", "--user-file", str(user_file))
    with pytest.raises(CommandError, match="No prompt version 9"):
        run("--project", project.slug, "show", "9")


def test_the_list_page_and_endpoint_run_the_same_queries_for_more_versions(project, admin_user):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client = client_for(admin_user)
    api = token_client(admin_user)

    def counts() -> tuple[int, int]:
        with CaptureQueriesContext(connection) as page:
            assert client.get(reverse("feedback:prompt-list", args=[project.slug])).status_code == 200
        with CaptureQueriesContext(connection) as endpoint:
            assert api.get(f"/api/projects/{project.slug}/prompts/").status_code == 200
        return len(page), len(endpoint)

    new_version(project)
    few = counts()
    for _ in range(8):
        new_version(project, author=admin_user)
    assert counts() == few
