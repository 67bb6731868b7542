"""The database itself refuses rows that break the domain's invariants."""

import pytest
from django.db import IntegrityError, transaction

from feedback.models import Image, ImportedFeedback, Project, ProjectMembership, Sample, Turn

pytestmark = pytest.mark.django_db


def refused(make) -> bool:
    try:
        with transaction.atomic():
            make()
    except IntegrityError:
        return True
    return False


@pytest.fixture
def sample(project):
    return Sample.objects.create(project=project, external_id="s1", content_hash="h")


def test_project_scale_must_be_ordered():
    assert refused(lambda: Project.objects.create(name="p", slug="p", score_min=7, score_max=1))
    assert refused(lambda: Project.objects.create(name="q", slug="q", score_min=3, score_max=3))
    Project.objects.create(name="ok", slug="ok", score_min=0, score_max=10)


def test_project_temperature_range():
    assert refused(lambda: Project.objects.create(name="p", slug="p", llm_temperature=2.5))


def test_external_id_unique_per_project_only(project, sample):
    assert refused(lambda: Sample.objects.create(project=project, external_id="s1", content_hash="x"))
    other = Project.objects.create(name="Other", slug="other")
    Sample.objects.create(project=other, external_id="s1", content_hash="x")


def test_external_id_must_not_be_empty(project):
    assert refused(lambda: Sample.objects.create(project=project, external_id="", content_hash="x"))


def test_turn_index_unique_and_user_message_required(sample):
    Turn.objects.create(sample=sample, index=0, user_message="q")
    assert refused(lambda: Turn.objects.create(sample=sample, index=0, user_message="again"))
    assert refused(lambda: Turn.objects.create(sample=sample, index=1, user_message=""))


def test_image_name_unique_per_project_and_file_needs_hash(project):
    Image.objects.create(project=project, file_name="a.jpg")
    assert refused(lambda: Image.objects.create(project=project, file_name="a.jpg"))
    assert refused(lambda: Image.objects.create(project=project, file_name="b.jpg", file="images/x.jpg"))
    assert refused(lambda: Image.objects.create(project=project, file_name="c.jpg", sha256="nothex"))
    assert refused(lambda: Image.objects.create(project=project, file_name=""))
    Image.objects.create(project=project, file_name="d.jpg", file="images/d.jpg", sha256="a" * 64)


def test_one_imported_feedback_per_turn_and_criterion(sample):
    turn = Turn.objects.create(sample=sample, index=0, user_message="q")
    ImportedFeedback.objects.create(turn=turn, criterion="helpfulness", score=4)
    assert refused(lambda: ImportedFeedback.objects.create(turn=turn, criterion="helpfulness", score=5))
    ImportedFeedback.objects.create(turn=turn, criterion="honesty", score=5)


def test_membership_role_valid_and_unique(project, django_user_model):
    user = django_user_model.objects.create_user("u", password="x")
    assert refused(lambda: ProjectMembership.objects.create(project=project, user=user, role="owner"))
    ProjectMembership.objects.create(project=project, user=user, role="annotator")
    assert refused(lambda: ProjectMembership.objects.create(project=project, user=user, role="admin"))


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"criteria": []}, "criteria"),
        ({"criteria": ["helpfulness", "helpfulness"]}, "criteria"),
        ({"criteria": "helpfulness"}, "criteria"),
        ({"level_descriptions": {"9": "beyond the scale"}}, "level_descriptions"),
        ({"level_descriptions": ["not", "an", "object"]}, "level_descriptions"),
    ],
)
def test_project_rubric_is_validated(changes, field):
    from django.core.exceptions import ValidationError

    project = Project(name="p", slug="p", **changes)
    with pytest.raises(ValidationError) as caught:
        project.full_clean()
    assert field in caught.value.message_dict


def test_default_rubric_is_valid():
    project = Project(name="p", slug="p")
    project.full_clean()
    assert project.criteria == ["helpfulness", "honesty", "harmlessness"]
    assert list(project.score_range) == [1, 2, 3, 4, 5, 6, 7]


def test_an_image_in_use_cannot_be_deleted_alone_but_goes_with_its_project(project):
    from django.db.models import RestrictedError

    image = Image.objects.create(project=project, file_name="a.jpg")
    Sample.objects.create(project=project, external_id="s1", content_hash="h", image=image)
    with pytest.raises(RestrictedError):
        image.delete()
    project.delete()
    assert not Image.objects.exists()
    assert not Sample.objects.exists()
