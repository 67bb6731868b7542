"""Projects and members: the writes behind the settings and members pages, the API and the
``create_project`` / ``project_member`` commands.

Every input is bounded here (the three doors share these checks) and refused with the field it
names. A rubric change that would leave existing scores outside the rubric (a criterion that drafts,
revisions, imported feedback or samples use; a scale narrower than scores already given) is refused
with the reason (``RubricInUse``, 409, naming the field). Nothing is deleted: archiving only hides
a project, and removing a member keeps their revisions (their leases go back to the queue).
"""

from __future__ import annotations

import re
import secrets
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.validators import UnicodeUsernameValidator
from django.core.exceptions import ValidationError
from django.core.validators import validate_slug
from django.db import IntegrityError, transaction
from django.db.models import Count, Q
from django.utils import timezone

from feedback.drafting import connections
from feedback.drafting import versions as prompt_versions
from feedback.drafting.models import Draft
from feedback.errors import Conflict, InvalidInput, NotAllowed, NotFound, summary
from feedback.models import (
    ImportedFeedback,
    OneTimePassword,
    Project,
    ProjectMembership,
    ReviewOrder,
    Role,
    Sample,
)
from feedback.review.claims import lease_end
from feedback.review.disagreement import adjudication_recheck
from feedback.review.models import Assignment, Revision

NAME_MAX = 200
SLUG_MAX = 100
DESCRIPTION_MAX = 5_000
GUIDELINES_MAX = 50_000
CRITERIA_MAX = 20
CRITERION_MAX = 50
SCORE_BOUNDS = (0, 100)
LEVEL_DESCRIPTION_MAX = 1_000
MODEL_MAX = 200
PROMPT_VERSION_MAX = 50
SEED_BOUNDS = (-(2**31), 2**31 - 1)
REVIEWS_REQUIRED_BOUNDS = (1, 20)
# Score difference that sends disagreeing reviews to adjudication (the model's check constraint).
ADJUDICATION_THRESHOLD_BOUNDS = (1, 100)
# One claim in this many serves gold; 0: none (the model's check constraint).
GOLD_EVERY_BOUNDS = (0, 1000)
LEASE_BOUNDS = (120, 86_400)
USERNAME_MAX = 150
# Slugs the pages use as words of their own (``/projects/new/``).
RESERVED_SLUGS = {"new"}
CRITERION_NAME = re.compile(r"^[a-z][a-z0-9]*(?:[_-][a-z0-9]+)*$")

RUBRIC_FIELDS = ("criteria", "score_min", "score_max", "level_descriptions")
SETTINGS_FIELDS = (
    "name",
    "description",
    "guidelines",
    *RUBRIC_FIELDS,
    "llm_connection",
    "llm_model",
    "llm_temperature",
    "prompt_version",
    "review_order",
    "review_criterion",
    "review_seed",
    "reviews_required",
    "review_lease_seconds",
    "adjudication_threshold",
    "gold_every",
)
# What a new project copies from the one it is made from (everything but its name and text).
COPIED_FIELDS = tuple(f for f in SETTINGS_FIELDS if f not in ("name", "description"))
REVIEWING_ROLES = (Role.ANNOTATOR, Role.ADMIN)


class RubricInUse(Conflict):
    """A rubric change that would orphan scores (409), naming the field and what uses it."""

    def __init__(self, errors: dict[str, list[str]]) -> None:
        super().__init__(summary(errors))
        self._errors = errors

    @property
    def errors(self) -> dict[str, list[str]]:
        return self._errors

    def __str__(self) -> str:
        return self.message


# --- validation -------------------------------------------------------------------------------


def _text(errors: dict, field: str, value: Any, limit: int, *, required: bool = False) -> str:
    if value is None:
        value = ""
    if not isinstance(value, str):
        errors[field] = ["must be text"]
        return ""
    value = value.strip() if field in ("name", "llm_model", "prompt_version", "llm_connection") else value
    if "\x00" in value:
        errors[field] = ["must not hold NUL characters"]
    elif required and not value.strip():
        errors[field] = ["must not be empty"]
    elif len(value) > limit:
        errors[field] = [f"at most {limit:,} characters (got {len(value):,})"]
    return value


def _integer(errors: dict, field: str, value: Any, bounds: tuple[int, int], *, allow_none: bool = False) -> int | None:
    if value is None or value == "":
        if allow_none:
            return None
        errors[field] = ["required"]
        return None
    if isinstance(value, bool) or not isinstance(value, int | str):
        errors[field] = ["must be a whole number"]
        return None
    try:
        number = int(value)
    except ValueError:
        errors[field] = [f"{str(value)[:50]!r} is not a whole number"]
        return None
    low, high = bounds
    if not low <= number <= high:
        errors[field] = [f"must be between {low:,} and {high:,} (got {number:,})"]
        return None
    return number


def _criteria(errors: dict, value: Any) -> list[str]:
    if not isinstance(value, list) or not value:
        errors["criteria"] = ["a non-empty list of criterion names"]
        return []
    if len(value) > CRITERIA_MAX:
        errors["criteria"] = [f"at most {CRITERIA_MAX} criteria (got {len(value)})"]
        return []
    names: list[str] = []
    for index, name in enumerate(value):
        if not isinstance(name, str) or not name.strip():
            errors["criteria"] = [f"criterion {index + 1} is empty"]
            return []
        name = name.strip()
        if len(name) > CRITERION_MAX:
            errors["criteria"] = [f"{name[:50]!r}…: at most {CRITERION_MAX} characters"]
            return []
        if not CRITERION_NAME.match(name):
            errors["criteria"] = [
                f"{name!r}: lower-case letters and digits, words joined by '_' or '-', starting with a letter"
            ]
            return []
        if name in names:
            errors["criteria"] = [f"{name!r} is listed twice"]
            return []
        names.append(name)
    return names


def _levels(errors: dict, value: Any, score_min: int | None, score_max: int | None) -> dict[str, str]:
    if value is None or value == "":
        return {}
    if not isinstance(value, dict):
        errors["level_descriptions"] = ['an object from score to description, e.g. {"1": "Fails badly."}']
        return {}
    scale = (
        {str(n) for n in range(score_min, score_max + 1)} if score_min is not None and score_max is not None else None
    )
    levels: dict[str, str] = {}
    for key, text in value.items():
        key = str(key).strip()
        if not re.fullmatch(r"-?\d{1,3}", key):
            errors["level_descriptions"] = [f"{key[:20]!r} is not a score: the keys are whole numbers"]
            return {}
        if scale is not None and key not in scale:
            errors["level_descriptions"] = [f"score {key[:20]!r} is outside the scale {score_min} to {score_max}"]
            return {}
        if not isinstance(text, str) or "\x00" in text:
            errors["level_descriptions"] = [f"the description of {key} must be text (without NUL characters)"]
            return {}
        if len(text) > LEVEL_DESCRIPTION_MAX:
            errors["level_descriptions"] = [f"the description of {key}: at most {LEVEL_DESCRIPTION_MAX:,} characters"]
            return {}
        if text.strip():
            levels[key] = text.strip()
    return dict(sorted(levels.items(), key=lambda item: int(item[0])))


def clean_settings(
    values: dict[str, Any], *, current: dict[str, Any], prompt_names: list[str] | None = None
) -> dict[str, Any]:
    """``values`` (any of ``SETTINGS_FIELDS``) checked against their bounds, merged over ``current``
    (the project's settings, or a new project's defaults); every field at fault named at once.
    ``prompt_names``: the prompt versions the project has (a new project: the shipped one)."""
    unknown = sorted(set(values) - set(SETTINGS_FIELDS))
    if unknown:
        raise InvalidInput.of({name: ["not a project setting"] for name in unknown})
    errors: dict[str, list[str]] = {}
    merged = {**current, **values}
    out: dict[str, Any] = {}
    out["name"] = _text(errors, "name", merged["name"], NAME_MAX, required=True)
    out["description"] = _text(errors, "description", merged["description"], DESCRIPTION_MAX)
    out["guidelines"] = _text(errors, "guidelines", merged["guidelines"], GUIDELINES_MAX)
    out["criteria"] = _criteria(errors, merged["criteria"])
    score_min = _integer(errors, "score_min", merged["score_min"], SCORE_BOUNDS)
    score_max = _integer(errors, "score_max", merged["score_max"], SCORE_BOUNDS)
    if score_min is not None and score_max is not None and score_min >= score_max:
        errors["score_max"] = [f"must be above score_min ({score_min})"]
        score_max = None
    out["score_min"], out["score_max"] = score_min, score_max
    levels = merged["level_descriptions"]
    if "level_descriptions" not in values and isinstance(levels, dict) and score_min is not None and score_max:
        # A new scale without new descriptions keeps the descriptions of the scores still on it.
        levels = {k: v for k, v in levels.items() if str(k) in {str(n) for n in range(score_min, score_max + 1)}}
    out["level_descriptions"] = _levels(errors, levels, score_min, score_max)
    connection = _text(errors, "llm_connection", merged["llm_connection"], 100)
    if connection and connection not in connections.registry():
        errors["llm_connection"] = [
            f"{connection[:100]!r} is not a connection; known: {', '.join(connections.names())}"
        ]
    out["llm_connection"] = connection
    out["llm_model"] = _text(errors, "llm_model", merged["llm_model"], MODEL_MAX)
    temperature = merged["llm_temperature"]
    try:
        temperature = float(temperature)
        if not 0 <= temperature <= 2:
            raise ValueError
    except (TypeError, ValueError):
        errors["llm_temperature"] = ["a number from 0 to 2"]
    out["llm_temperature"] = temperature
    version = _text(errors, "prompt_version", merged["prompt_version"], PROMPT_VERSION_MAX, required=True)
    known_prompts = prompt_names if prompt_names is not None else [prompt_versions.shipped_name()]
    if version and "prompt_version" not in errors and version not in known_prompts:
        errors["prompt_version"] = [f"{version!r} is unknown; known: {', '.join(known_prompts[:20])}"]
    out["prompt_version"] = version
    order = merged["review_order"]
    if order not in ReviewOrder.values:
        errors["review_order"] = [f"one of {', '.join(ReviewOrder.values)}"]
    out["review_order"] = order
    criterion = _text(errors, "review_criterion", merged["review_criterion"], CRITERION_MAX)
    if order == ReviewOrder.CRITERION and out["criteria"] and criterion not in out["criteria"]:
        errors["review_criterion"] = ["name one of the project's criteria to review first"]
    out["review_criterion"] = criterion
    out["review_seed"] = _integer(errors, "review_seed", merged["review_seed"], SEED_BOUNDS)
    out["reviews_required"] = _integer(errors, "reviews_required", merged["reviews_required"], REVIEWS_REQUIRED_BOUNDS)
    out["review_lease_seconds"] = _integer(
        errors, "review_lease_seconds", merged["review_lease_seconds"], LEASE_BOUNDS, allow_none=True
    )
    out["adjudication_threshold"] = _integer(
        errors, "adjudication_threshold", merged["adjudication_threshold"], ADJUDICATION_THRESHOLD_BOUNDS
    )
    out["gold_every"] = _integer(errors, "gold_every", merged["gold_every"], GOLD_EVERY_BOUNDS)
    if errors:
        raise InvalidInput.of(errors)
    return out


def settings_of(project: Project) -> dict[str, Any]:
    return {field: getattr(project, field) for field in SETTINGS_FIELDS}


def defaults() -> dict[str, Any]:
    return settings_of(Project(name=""))


# --- the rubric in use ---------------------------------------------------------------------------


def _plural(n: int, one: str, many: str) -> str:
    return f"{n:,} {one if n == 1 else many}"


def _uses(counts: dict[str, int]) -> str:
    words = {
        "drafts": ("draft", "drafts"),
        "revisions": ("revision", "revisions"),
        "imported": ("imported feedback record", "imported feedback records"),
        "samples": ("sample (its target criterion)", "samples (their target criterion)"),
    }
    return ", ".join(_plural(n, *words[key]) for key, n in counts.items() if n)


def rubric_conflicts(project: Project, new: dict[str, Any]) -> dict[str, list[str]]:
    """What a rubric change would orphan: criteria in use that ``new`` drops (a rename drops the old
    name), and scores outside ``new``'s scale. One query per kind of record, whatever the size."""
    errors: dict[str, list[str]] = {}
    drafts = Draft.objects.filter(turn__sample__project=project)
    revisions = Revision.objects.filter(turn__sample__project=project)
    imported = ImportedFeedback.objects.filter(turn__sample__project=project)
    samples = Sample.objects.filter(project=project)
    dropped = [c for c in project.criteria if c not in new["criteria"]]
    if dropped:
        keyed = {f"c{i}": c for i, c in enumerate(dropped)}
        counts = {
            "drafts": drafts.aggregate(**{k: Count("id", filter=Q(scores__has_key=c)) for k, c in keyed.items()}),
            "revisions": revisions.aggregate(**{k: Count("id", filter=Q(scores__has_key=c)) for k, c in keyed.items()}),
            "imported": imported.aggregate(**{k: Count("id", filter=Q(criterion=c)) for k, c in keyed.items()}),
            "samples": samples.aggregate(**{k: Count("id", filter=Q(target_criterion=c)) for k, c in keyed.items()}),
        }
        messages = []
        for key, name in keyed.items():
            used = {kind: found[key] for kind, found in counts.items()}
            if any(used.values()):
                messages.append(f"{name!r} is used by {_uses(used)}; a criterion in use cannot be removed or renamed")
        if messages:
            errors["criteria"] = messages
    low, high = new["score_min"], new["score_max"]
    if low > project.score_min or high < project.score_max:
        names = sorted(set(project.criteria) | set(new["criteria"]))
        outside = Q(overall__lt=low) | Q(overall__gt=high)
        scored = Q()
        for name in names:
            scored |= Q(**{f"scores__{name}__lt": low}) | Q(**{f"scores__{name}__gt": high})
        used = {
            "drafts": drafts.filter(outside | scored).count(),
            "revisions": revisions.filter(scored).count(),
            "imported": imported.filter(Q(score__lt=low) | Q(score__gt=high)).count(),
        }
        if any(used.values()):
            field = "score_min" if low > project.score_min else "score_max"
            errors[field] = [
                f"{_uses(used)} hold scores outside {low} to {high}; the scale cannot leave existing scores out"
            ]
    return errors


# --- projects ------------------------------------------------------------------------------------


def _clean_slug(slug: Any) -> str:
    if not isinstance(slug, str) or not slug.strip():
        raise InvalidInput("slug", "must not be empty")
    slug = slug.strip()
    if len(slug) > SLUG_MAX:
        raise InvalidInput("slug", f"at most {SLUG_MAX} characters (got {len(slug):,})")
    try:
        validate_slug(slug)
    except ValidationError:
        raise InvalidInput("slug", "letters, digits, '-' and '_' only") from None
    if slug in RESERVED_SLUGS:
        raise InvalidInput("slug", f"{slug!r} is reserved")
    return slug


def project_create(
    *, user: Any = None, slug: Any, name: Any, from_project: Project | None = None, **values: Any
) -> Project:
    """A new project: ``from_project``'s rubric, guidelines, LLM and queue settings (none of its
    data or members) unless ``values`` say otherwise. The creator (when a user) becomes its admin."""
    slug = _clean_slug(slug)
    base = defaults()
    if from_project is not None:
        base.update({field: getattr(from_project, field) for field in COPIED_FIELDS})
    names = prompt_versions.version_names(from_project) if from_project is not None else None
    cleaned = clean_settings({**values, "name": name}, current=base, prompt_names=names)
    if Project.objects.filter(slug=slug).exists():
        raise InvalidInput("slug", f"{slug!r} is taken")
    if Project.objects.filter(name=cleaned["name"]).exists():
        raise InvalidInput("name", f"{cleaned['name'][:100]!r} is taken")
    try:
        with transaction.atomic():
            project = Project.objects.create(slug=slug, **cleaned)
            if from_project is not None:
                prompt_versions.versions_copy(source=from_project, target=project, author=user)
            else:
                prompt_versions.versions_of(project)  # the shipped v1, its version 1
            if user is not None:
                ProjectMembership.objects.create(project=project, user=user, role=Role.ADMIN)
    except IntegrityError:  # taken by a concurrent create between the check and the insert
        raise InvalidInput("slug", f"{slug!r} or the name is taken") from None
    return project


def project_update(*, project: Project, values: dict[str, Any]) -> Project:
    """Changes the settings given in ``values``; a rubric change is checked against the scores
    the project already holds."""
    with transaction.atomic():
        project = Project.objects.select_for_update().get(pk=project.pk)
        cleaned = clean_settings(
            values, current=settings_of(project), prompt_names=prompt_versions.version_names(project)
        )
        if cleaned["name"] != project.name and Project.objects.filter(name=cleaned["name"]).exists():
            raise InvalidInput("name", f"{cleaned['name'][:100]!r} is taken")
        if any(cleaned[f] != getattr(project, f) for f in RUBRIC_FIELDS):
            conflicts = rubric_conflicts(project, cleaned)
            if conflicts:
                raise RubricInUse(conflicts)
        changed = [field for field, value in cleaned.items() if getattr(project, field) != value]
        for field in changed:
            setattr(project, field, cleaned[field])
        if changed:
            project.save(update_fields=[*changed, "updated_at"])
        if "adjudication_threshold" in changed:
            adjudication_recheck(project)
    return project


def project_archive(*, project: Project, archived: bool = True) -> Project:
    """Hides the project from the lists (``archived``) or shows it again; deletes nothing."""
    project.archived_at = (project.archived_at or timezone.now()) if archived else None
    project.save(update_fields=["archived_at", "updated_at"])
    return project


# --- members -------------------------------------------------------------------------------------


def _role(role: Any) -> str:
    if role not in Role.values:
        raise InvalidInput("role", f"one of {', '.join(Role.values)}")
    return str(role)


def _username(username: Any) -> str:
    if not isinstance(username, str) or not username.strip():
        raise InvalidInput("username", "must not be empty")
    username = username.strip()
    if len(username) > USERNAME_MAX:
        raise InvalidInput("username", f"at most {USERNAME_MAX} characters (got {len(username):,})")
    return username


def membership_of(project: Project, username: Any, *, lock: bool = False) -> ProjectMembership:
    """The member of that user name; ``NotFound`` for anyone else (a name past any user's length too)."""
    memberships = ProjectMembership.objects.select_related("user")
    if lock:
        memberships = memberships.select_for_update()
    name = username.strip() if isinstance(username, str) else ""
    found = memberships.filter(project=project, user__username=name).first() if 0 < len(name) <= USERNAME_MAX else None
    if found is None:
        raise NotFound("No such member.")
    return found


def member_add(
    *, project: Project, actor: Any, username: Any, role: Any, create: bool = False
) -> tuple[ProjectMembership, str | None]:
    """Adds an existing user in ``role``; with ``create`` (superusers and the command line only)
    makes the user first, with a one-time password that is returned once and never stored in clear."""
    username, role = _username(username), _role(role)
    users = get_user_model().objects
    password = None
    with transaction.atomic():
        if create:
            if actor is not None and not actor.is_superuser:
                raise NotAllowed("Only superusers create users.")
            try:
                UnicodeUsernameValidator()(username)
            except ValidationError:
                raise InvalidInput("username", "letters, digits and @ . + - _ only") from None
            if users.filter(username=username).exists():
                raise InvalidInput("username", f"{username!r} exists already: add it without creating a user")
            password = secrets.token_urlsafe(12)
            user = users.create_user(username=username, password=password)
            OneTimePassword.objects.create(user=user)
        else:
            found = users.filter(username=username).first()
            if found is None:
                raise InvalidInput("username", f"no user named {username[:100]!r}")
            user = found
        existing = ProjectMembership.objects.filter(project=project, user=user).first()
        if existing is not None:
            raise Conflict(f"{username} is already a member ({existing.role}); change their role instead.")
        membership = ProjectMembership.objects.create(project=project, user=user, role=role)
    return membership, password


def _check_not_last_admin(project: Project, membership: ProjectMembership, what: str) -> None:
    admins = list(
        ProjectMembership.objects.select_for_update()
        .filter(project=project, role=Role.ADMIN)
        .values_list("pk", flat=True)
    )
    if membership.role == Role.ADMIN and admins == [membership.pk]:
        raise Conflict(
            f"{membership.user.username} is the project's last admin and cannot be {what}: "
            "make another member admin first."
        )


def _release_leases(project: Project, membership: ProjectMembership, actor: Any) -> int:
    """Gives the member's leased samples back to the queue; their revisions stay."""
    held = Assignment.objects.filter(project=project, reviewer=membership.user, state=Assignment.State.LEASED)
    released = 0
    for assignment in held:
        try:
            lease_end(
                assignment=assignment,
                user=actor if actor is not None else membership.user,
                state=Assignment.State.RELEASED,
                by_admin=True,
            )
        except NotAllowed:  # it ended meanwhile (expired, submitted)
            continue
        released += 1
    return released


def member_set_role(*, project: Project, actor: Any, username: Any, role: Any) -> ProjectMembership:
    """A member's new role. The last admin keeps theirs; a member who may no longer review gives
    their leases back to the queue."""
    role = _role(role)
    with transaction.atomic():
        membership = membership_of(project, username, lock=True)
        if membership.role == role:
            return membership
        if role != Role.ADMIN:
            _check_not_last_admin(project, membership, "demoted")
        membership.role = role
        membership.save(update_fields=["role"])
        if role not in REVIEWING_ROLES:
            _release_leases(project, membership, actor)
    return membership


def member_remove(*, project: Project, actor: Any, username: Any) -> int:
    """Removes a member: their leases go back to the queue (returns how many), their revisions
    and past reviews stay. The last admin cannot be removed."""
    with transaction.atomic():
        membership = membership_of(project, username, lock=True)
        _check_not_last_admin(project, membership, "removed")
        released = _release_leases(project, membership, actor)
        membership.delete()
    return released
