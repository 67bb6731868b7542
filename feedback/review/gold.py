"""Gold checks: reviewed samples whose finals become the expected answer of hidden checks.

An admin marks a reviewed sample as gold (``gold_mark``): its finals (an adjudication where the
reviews were settled, else the latest submitted review, as releases take them) are copied onto
the GoldSample. With the project's ``gold_every`` set to N, about one claim in N
(``gold_due``, a hash of the reviewer and their count of claims, so no pattern shows) leases a
gold sample the reviewer never had (``gold_pick``) as an assignment with ``gold`` set. Such a
check looks like any review to the reviewer; it holds none of the sample's review places, counts
toward none of its reviews, never opens adjudication and is never released. The quality app
scores it against the expected answer (``quality/annotators.py``).
"""

from __future__ import annotations

import hashlib
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Count, Exists, F, OuterRef, Q
from django.db.models.functions import Mod
from django.utils import timezone

from feedback.models import Project, Role, Sample, Turn

from ..errors import Conflict, InvalidInput, NotFound
from ..permissions import roles_in
from .disagreement import reviews_by_turn
from .models import Adjudication, AdjudicationCase, Assignment, GoldSample

# A sample named by its external id or number: at most this long.
KEY_MAX = 200
# Rows of the gold list a page or an answer shows at most.
GOLD_LIST_MAX = 500
# A prime above 2**32: each reviewer gets the gold samples in their own order.
_MODULUS = 4_294_967_311


def gold_due(project: Project, reviewer) -> bool:
    """Whether this claim of the reviewer serves gold: one in ``gold_every``, decided by a hash of
    the project, the reviewer and how many claims they made in it (never for the project's admins,
    who see which samples are gold)."""
    every = project.gold_every
    if not every:
        return False
    made = Assignment.objects.filter(project=project, reviewer=reviewer).count()
    if not gold_turn(project.pk, reviewer.pk, made, every):
        return False
    return Role.ADMIN not in roles_in(reviewer, project)


def gold_turn(project_id: int, reviewer_id: int, made: int, every: int) -> bool:
    """Whether a reviewer's claim after ``made`` claims is a gold one: one in ``every`` on average,
    in no pattern the reviewer could see."""
    digest = hashlib.sha256(f"{project_id}:{reviewer_id}:{made}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % every == 0


def gold_pick(project: Project, reviewer) -> int | None:
    """A gold sample of the project the reviewer never had: never reviewed, checked or settled by
    them. Each reviewer meets the gold samples in an order of their own."""
    multiplier = 1 + int.from_bytes(hashlib.sha256(str(reviewer.pk).encode()).digest()[:4], "big") % (_MODULUS - 1)
    had = Assignment.objects.filter(sample=OuterRef("sample_id"), reviewer=reviewer)
    settled = Adjudication.objects.filter(sample=OuterRef("sample_id"), adjudicator=reviewer)
    return (
        GoldSample.objects.filter(project=project, retired_at__isnull=True)
        .exclude(Exists(had))
        .exclude(Exists(settled))
        .annotate(turn_key=Mod(F("id") * multiplier, _MODULUS))
        .order_by("turn_key", "id")
        .values_list("sample_id", flat=True)
        .first()
    )


def expected_answers(project: Project, sample: Sample) -> dict[str, dict[str, Any]]:
    """The sample's finals by turn id, as releases take them; InvalidInput when it has none to give."""
    reviews = Assignment.objects.filter(sample=sample, state=Assignment.State.SUBMITTED, gold=False)
    if reviews.exclude(flag="").exists():
        raise InvalidInput("sample", f"Sample {sample.external_id} was flagged by a reviewer: it has no answer.")
    if reviews.count() < project.reviews_required:
        raise InvalidInput(
            "sample",
            f"Sample {sample.external_id} has {reviews.count()} of its {project.reviews_required} reviews: "
            "only reviewed samples can be gold.",
        )
    if AdjudicationCase.objects.filter(sample=sample, settled_at__isnull=True).exists():
        raise InvalidInput("sample", f"Sample {sample.external_id} waits for adjudication: settle it first.")
    by_turn = reviews_by_turn(sample.pk)
    settled = {a.turn_id: a for a in Adjudication.objects.filter(sample=sample)}
    expected: dict[str, dict[str, Any]] = {}
    for turn in Turn.objects.filter(sample=sample, model_response__isnull=False).order_by("index"):
        final: Any = settled.get(turn.pk)
        if final is None and by_turn.get(turn.pk):
            final = max(by_turn[turn.pk], key=lambda r: (r.created_at, r.pk))
        if final is None:
            raise InvalidInput("sample", f"Turn {turn.index + 1} of sample {sample.external_id} has no final.")
        expected[str(turn.pk)] = {
            "decision": final.decision,
            "critique": final.critique,
            "refinement": final.refinement,
            "scores": dict(final.scores or {}),
            "reason": final.reason,
        }
    if not expected:
        raise InvalidInput("sample", f"Sample {sample.external_id} has no answered turn.")
    return expected


def sample_by_key(project: Project, key: Any) -> Sample:
    """The project's sample by its external id or its number (a page, API or command argument)."""
    text = str(key if key is not None else "").strip()
    if not text or len(text) > KEY_MAX:
        raise InvalidInput("sample", f"A sample's external id or number, at most {KEY_MAX} characters.")
    sample = Sample.objects.filter(project=project, external_id=text).first()
    if sample is None and text.isascii() and text.isdigit() and len(text) <= 18:
        sample = Sample.objects.filter(project=project, pk=int(text)).first()
    if sample is None:
        raise NotFound(f"No sample {text[:100]!r} in this project.")
    return sample


def gold_mark(*, project: Project, sample: Sample, user) -> GoldSample:
    """Makes a reviewed sample gold; its finals, as they are now, are the expected answer. A sample
    marked before and retired comes back with the answer it had."""
    with transaction.atomic():
        existing = GoldSample.objects.select_for_update().filter(sample=sample).first()
        if existing is not None:
            if existing.retired_at is None:
                raise Conflict(f"Sample {sample.external_id} is gold already.")
            existing.retired_at = None
            existing.save(update_fields=["retired_at"])
            return existing
        expected = expected_answers(project, sample)
        try:
            with transaction.atomic():
                return GoldSample.objects.create(
                    project=project, sample=sample, expected=expected, marked_by=user, marked_at=timezone.now()
                )
        except IntegrityError:
            raise Conflict(f"Sample {sample.external_id} is gold already.") from None


def gold_retire(*, project: Project, sample: Sample) -> GoldSample:
    """Serves the sample to no one any more. The checks made of it keep their scores, and they
    stay out of releases and of the sample's reviews; the sample itself is released again."""
    gold = GoldSample.objects.filter(project=project, sample=sample, retired_at__isnull=True).first()
    if gold is None:
        raise NotFound(f"Sample {sample.external_id} is not gold.")
    gold.retired_at = timezone.now()
    gold.save(update_fields=["retired_at"])
    return gold


def gold_samples(project: Project):
    """The project's gold samples in service, newest first, with the checks made of each."""
    checks = Count(
        "sample__assignments",
        filter=Q(sample__assignments__gold=True, sample__assignments__state=Assignment.State.SUBMITTED),
    )
    return (
        GoldSample.objects.filter(project=project, retired_at__isnull=True)
        .select_related("sample", "marked_by")
        .annotate(checks=checks)
        .order_by("-marked_at", "-id")
    )


def gold_list(project: Project):
    """The first ``GOLD_LIST_MAX`` of ``gold_samples`` (one query)."""
    return gold_samples(project)[:GOLD_LIST_MAX]


def gold_count(project: Project) -> int:
    return GoldSample.objects.filter(project=project, retired_at__isnull=True).count()
