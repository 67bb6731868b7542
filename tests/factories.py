"""Test data for the domain, made by factories: users, projects with their members, images, samples
with their turns, and drafts.

The defaults are one plain story (a street picture, a question about the vehicle in it, an answer
naming the bus); a test module that needs its own wording subclasses a factory or passes the fields.
``turns__...`` arguments of a sample go to each of its turns, ``drafts__...`` arguments of a turn to
each of its drafts::

    SampleFactory.create(project=project, turns=3, turns__awaiting_last=True)
    SampleFactory.create_numbered(5, project=project, prefix="h", target_criterion="honesty")
    TurnFactory.create(sample=sample, index=1, drafts=2, drafts__failed_first=True)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import factory
from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import Group, User
from factory.django import DjangoModelFactory

from feedback.drafting.models import CallStatus, Draft
from feedback.images import apply_file
from feedback.models import Image, Project, ProjectMembership, Sample, Turn

SCORES = {"helpfulness": 4, "honesty": 6, "harmlessness": 7}


def add_roles(user: User, create: bool, extracted: list[str] | None, **kwargs: Any) -> None:
    for role in extracted or ():
        user.groups.add(Group.objects.get_or_create(name=role)[0])


class UserFactory(DjangoModelFactory[User]):
    """A user whose password is ``pw-<username>``; ``roles=[...]`` puts it in those role groups."""

    class Meta:
        model = User
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    password = factory.LazyAttribute(lambda o: make_password(f"pw-{o.username}"))

    roles = factory.PostGeneration(add_roles)


class MembershipFactory(DjangoModelFactory[ProjectMembership]):
    class Meta:
        model = ProjectMembership

    project = factory.SubFactory("tests.factories.ProjectFactory")
    user = factory.SubFactory(UserFactory)
    role = "annotator"


class ProjectFactory(DjangoModelFactory[Project]):
    """A project; ``members={user: role}`` makes their memberships."""

    class Meta:
        model = Project
        skip_postgeneration_save = True

    name = factory.Sequence(lambda n: f"Project {n}")
    slug = factory.Sequence(lambda n: f"project-{n}")

    @factory.post_generation
    def members(self, create: bool, extracted: Mapping[User, str] | None, **kwargs: Any) -> None:
        for user, role in (extracted or {}).items():
            MembershipFactory.create(project=self, user=user, role=role)


def store_content(image: Image, create: bool, extracted: bytes | None, **kwargs: Any) -> None:
    if extracted is not None:
        apply_file(image, extracted)
        image.save()


class ImageFactory(DjangoModelFactory[Image]):
    """The annotated street picture of a project, one per file name (made once, then found);
    ``content=<bytes>`` stores a file for it."""

    class Meta:
        model = Image
        django_get_or_create = ("project", "file_name")
        skip_postgeneration_save = True

    project = factory.SubFactory(ProjectFactory)
    file_name = "street.jpg"
    width = 640
    height = 480
    captions = factory.LazyFunction(lambda: ["A red bus drives down a city street."])
    object_boxes = factory.LazyFunction(
        lambda: [
            {"label": "bus", "bbox": [40, 60, 300, 200]},
            {"label": "person", "bbox": [400, 90, 60, 180]},
        ]
    )
    regions = factory.LazyFunction(lambda: [{"description": "a shop window with posters", "bbox": [500, 40, 120, 160]}])

    content = factory.PostGeneration(store_content)


class SampleFactory(DjangoModelFactory[Sample]):
    """A sample about its project's street picture with ``turns`` turns (one unless told; indexes
    from 0). ``turns__awaiting_last=True`` leaves the last one awaiting its response; other
    ``turns__<name>`` arguments go to ``TurnFactory``."""

    class Meta:
        model = Sample
        skip_postgeneration_save = True

    project = factory.SubFactory(ProjectFactory)
    # Declared as object: a subclass may give a plain value (an id, no image) instead.
    external_id: object = factory.Sequence(lambda n: f"sample{n}")
    image: object = factory.SubFactory(ImageFactory, project=factory.SelfAttribute("..project"))
    target_criterion = "helpfulness"
    reference_answer = "A red double-decker bus drives past a shop."
    content_hash = factory.SelfAttribute("external_id")

    @factory.post_generation
    def turns(self, create: bool, extracted: int | None, *, awaiting_last: bool = False, **fields: Any) -> None:
        count = 1 if extracted is None else extracted
        for index in range(count):
            TurnFactory.create(sample=self, index=index, awaiting=awaiting_last and index == count - 1, **fields)

    @classmethod
    def create_numbered(cls, count: int, *, prefix: str = "s", **fields: Any) -> list[Sample]:
        """``count`` samples whose external ids (and content hashes) are ``<prefix>0``, ``<prefix>1``...,
        numbered from 0 in every call."""
        external_ids = factory.Iterator([f"{prefix}{i}" for i in range(count)], cycle=False)
        return cls.create_batch(count, external_id=external_ids, **fields)


class TurnFactory(DjangoModelFactory[Turn]):
    """A turn: turn 0 asks ``question``, later turns ``follow_up``; the response is ``answer``
    (``first_answer`` for turn 0 when given), none when ``awaiting``. ``follow_up`` and ``answer``
    are formatted with the turn's ``index`` and the sample's ``external_id``. ``drafts=n`` makes n
    successful drafts of an answered turn (``drafts__failed_first=True``: one failed draft before
    them; ``drafts__critique`` is formatted with the draft's number ``n``)."""

    class Meta:
        model = Turn
        skip_postgeneration_save = True

    class Params:
        question = "What vehicle is in the picture?"
        follow_up = "Say more about its colour."
        answer = "A bus, answer {index} of {external_id}."
        first_answer: str | None = None
        awaiting = False

    sample = factory.SubFactory(SampleFactory, turns=0)
    index = 0
    user_message = factory.LazyAttribute(
        lambda o: o.question if o.index == 0 else o.follow_up.format(index=o.index, external_id=o.sample.external_id)
    )
    model_response = factory.LazyAttribute(
        lambda o: (
            None
            if o.awaiting
            else o.first_answer
            if o.index == 0 and o.first_answer is not None
            else o.answer.format(index=o.index, external_id=o.sample.external_id)
        )
    )

    @classmethod
    def create_numbered(cls, count: int, *, prefix: str = "s", **fields: Any) -> list[Turn]:
        """``count`` turns, each of a sample of its own whose external id is ``<prefix>0``,
        ``<prefix>1``..., numbered from 0 in every call (``sample__<name>`` for the samples' fields)."""
        external_ids = factory.Iterator([f"{prefix}{i}" for i in range(count)], cycle=False)
        return cls.create_batch(count, sample__external_id=external_ids, **fields)

    @factory.post_generation
    def drafts(
        self, create: bool, extracted: int | None, *, failed_first: bool = False, critique: str = "", **fields: Any
    ) -> None:
        if self.model_response is None:
            return
        if failed_first:
            DraftFactory.create(turn=self, failed=True)
        for n in range(extracted or 0):
            numbered = {"critique": critique.format(n=n)} if critique else {}
            DraftFactory.create(turn=self, **numbered, **fields)


class DraftFactory(DjangoModelFactory[Draft]):
    """A successful draft of a turn; ``failed=True``: a failed call (a timeout) that drafted nothing."""

    class Meta:
        model = Draft

    class Params:
        failed = factory.Trait(
            status=CallStatus.FAILED,
            error="timeout",
            model="m",
            endpoint="e",
            critique="",
            refinement="",
            scores=factory.LazyFunction(dict),
            overall=None,
            prompt_version="",
            prompt_hash="",
        )

    turn = factory.SubFactory(TurnFactory)
    status = CallStatus.OK
    model = "annotator-simulator"
    endpoint = "http://127.0.0.1:8001/v1"
    critique: object = factory.LazyAttribute(
        lambda o: f"The answer to turn {o.turn.index} names the bus but not its colour."
    )
    refinement = "Mention that the bus is red."
    scores: object = factory.LazyFunction(lambda: dict(SCORES))
    overall = 5
    prompt_version = "v1"
    prompt_hash = "0" * 64
