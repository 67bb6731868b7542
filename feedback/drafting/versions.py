"""A project's prompt versions: make one (from another, or for a new project), edit one that never
drafted, make one the project's default; the selectors the pages, the API and the command share.

Every input is bounded and refused naming its field. A version's text is frozen once it drafted
(``locked_at``, set by the drafting path): a change to it is refused (409), and saved as a new version
instead. Version 1 is the shipped ``v1`` and never changes.
"""

from __future__ import annotations

import re
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Max, QuerySet

from feedback.drafting.models import Draft, PromptVersion
from feedback.errors import Conflict, InvalidInput, NotFound
from feedback.models import Project

from .prompts import FEEDBACK_V1, PromptTemplate, check_template, ensure_shipped

TEXT_MAX = 20_000
NOTE_MAX = 2_000
NAME_MAX = 50
VERSIONS_MAX = 200
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
NUMBERED_NAME = re.compile(r"^v\d+$")


class VersionFrozen(Conflict):
    """A change to the text of a version that drafted (409), naming the field changed."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self._errors = {field: [message]}

    @property
    def errors(self) -> dict[str, list[str]]:
        return self._errors


def versions_of(project: Project) -> QuerySet[PromptVersion]:
    """The project's versions, oldest first (the shipped v1 made first when missing)."""
    ensure_shipped(project)
    return PromptVersion.objects.filter(project=project).select_related("author").order_by("number")


def default_version(project: Project) -> PromptVersion:
    """The version the project's jobs draft with unless they name another."""
    return versions_of(project).filter(name=project.prompt_version).first() or version_get(project, 1)


def version_names(project: Project) -> list[str]:
    return list(versions_of(project).values_list("name", flat=True))


def version_get(project: Project, number: Any, *, field: str = "number") -> PromptVersion:
    """The project's version ``number`` (a whole number), or NotFound / InvalidInput naming ``field``."""
    if isinstance(number, bool) or not isinstance(number, int | str):
        raise InvalidInput(field, "a version number")
    text = str(number).strip()
    if not text.isascii() or not text.isdigit():
        raise InvalidInput(field, f"{text[:20]!r} is not a version number")
    ensure_shipped(project)
    version = None
    if len(text) <= 6:  # no project holds more than VERSIONS_MAX versions
        version = PromptVersion.objects.filter(project=project, number=int(text)).select_related("author").first()
    if version is None:
        raise NotFound(f"No prompt version {text[:20]} in this project.")
    return version


def drafts_of(version: PromptVersion) -> int:
    """How many drafts used this exact version (its name and hash)."""
    return Draft.objects.filter(
        turn__sample__project_id=version.project_id, prompt_version=version.name, prompt_hash=version.sha256
    ).count()


def _texts(errors: dict[str, list[str]], *, system: Any, user: Any, note: Any) -> tuple[str, str, str]:
    out = []
    for field, value, limit in (("system", system, TEXT_MAX), ("user", user, TEXT_MAX), ("note", note, NOTE_MAX)):
        if value is None:
            value = ""
        if not isinstance(value, str):
            errors[field] = ["must be text"]
            value = ""
        elif len(value) > limit:
            errors[field] = [f"at most {limit:,} characters (got {len(value):,})"]
        elif field != "note" and not value.strip():
            errors[field] = ["must not be empty"]
        out.append(value)
    if "system" not in errors and "user" not in errors:
        try:
            check_template(system=out[0], user=out[1])
        except InvalidInput as exc:
            errors.update(exc.errors)
    return out[0], out[1], out[2]


def _name(errors: dict[str, list[str]], name: Any, number: int) -> str:
    if name is None or name == "":
        return f"v{number}"
    if not isinstance(name, str):
        errors["name"] = ["must be text"]
        return ""
    name = name.strip()
    if len(name) > NAME_MAX:
        errors["name"] = [f"at most {NAME_MAX} characters (got {len(name):,})"]
    elif not NAME_PATTERN.match(name):
        errors["name"] = ["letters, digits, '.', '_' and '-', starting with a letter or digit"]
    elif NUMBERED_NAME.match(name) and name != f"v{number}":
        errors["name"] = [f"'v' and a number is the name of that version number; this one is v{number}"]
    return name


def prompt_version_create(
    *,
    project: Project,
    author: Any = None,
    system: Any,
    user: Any,
    note: Any = "",
    name: Any = None,
    based_on: PromptVersion | None = None,
) -> PromptVersion:
    """A new version, numbered after the project's last (at most ``VERSIONS_MAX`` per project)."""
    ensure_shipped(project)
    errors: dict[str, list[str]] = {}
    system, user, note = _texts(errors, system=system, user=user, note=note)
    try:
        with transaction.atomic():
            Project.objects.select_for_update().filter(pk=project.pk).first()  # numbers are given one at a time
            last = PromptVersion.objects.filter(project=project).aggregate(n=Max("number"))["n"] or 0
            if last >= VERSIONS_MAX:
                raise InvalidInput("project", f"a project holds at most {VERSIONS_MAX} prompt versions")
            number = last + 1
            chosen = _name(errors, name, number)
            if chosen and "name" not in errors and PromptVersion.objects.filter(project=project, name=chosen).exists():
                errors["name"] = [f"{chosen!r} is taken"]
            if errors:
                raise InvalidInput.of(errors)
            template = PromptTemplate(version=chosen, system=system, user=user)
            return PromptVersion.objects.create(
                project=project,
                number=number,
                name=chosen,
                system=system,
                user=user,
                sha256=template.hash,
                note=note,
                author=author if getattr(author, "is_authenticated", False) else None,
                based_on=based_on.number if based_on is not None else None,
            )
    except IntegrityError:  # a concurrent create took the number or the name
        raise Conflict("Another version was saved at the same time; save again.") from None


def prompt_version_edit(
    *, version: PromptVersion, system: Any = None, user: Any = None, note: Any = None
) -> PromptVersion:
    """Changes the text or the note of a version. Its text is frozen once it drafted: a change is
    then refused (409) and belongs in a new version; the note may always change."""
    errors: dict[str, list[str]] = {}
    with transaction.atomic():
        current = PromptVersion.objects.select_for_update().get(pk=version.pk)
        new_system = current.system if system is None else system
        new_user = current.user if user is None else user
        new_note = current.note if note is None else note
        new_system, new_user, new_note = _texts(errors, system=new_system, user=new_user, note=new_note)
        if errors:
            raise InvalidInput.of(errors)
        text_changed = (new_system, new_user) != (current.system, current.user)
        if text_changed:
            used = drafts_of(current)
            if current.locked_at is not None or used or current.number == 1:
                why = f"it drafted {used:,} turn{'s' if used != 1 else ''}" if used else "it has drafted"
                if current.number == 1 and not used:
                    why = "it is the shipped prompt"
                raise VersionFrozen(
                    "user" if new_user != current.user else "system",
                    f"{current.name} is never edited: {why}. Save the change as a new version.",
                )
            current.system, current.user = new_system, new_user
            current.sha256 = PromptTemplate(version=current.name, system=new_system, user=new_user).hash
        current.note = new_note
        current.save(update_fields=["system", "user", "sha256", "note"])
    return current


def prompt_version_set_default(*, project: Project, version: PromptVersion) -> Project:
    """Makes ``version`` the one the project's jobs draft with unless they name another."""
    if version.project_id != project.pk:
        raise NotFound("No such prompt version in this project.")
    project.prompt_version = version.name
    project.save(update_fields=["prompt_version", "updated_at"])
    return project


def versions_copy(*, source: Project, target: Project, author: Any = None) -> None:
    """Gives ``target`` (a new project) every version of ``source``, with the same numbers, names and
    text (so the same hashes); a project made from another keeps its prompts."""
    ensure_shipped(target)
    copies = [
        PromptVersion(
            project=target,
            number=v.number,
            name=v.name,
            system=v.system,
            user=v.user,
            sha256=v.sha256,
            note=v.note or f"Copied from {source.slug}.",
            author=author if getattr(author, "is_authenticated", False) else None,
            based_on=v.based_on,
        )
        for v in PromptVersion.objects.filter(project=source, number__gt=1).order_by("number")[:VERSIONS_MAX]
    ]
    PromptVersion.objects.bulk_create(copies)


def shipped_name() -> str:
    return FEEDBACK_V1.version
