"""The worker's memo of jobs and projects stays bounded and can be cleared."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from feedback.jobs import service
from feedback.jobs.memo import BoundedCache
from feedback.jobs.service import job_create
from feedback.models import Project


def test_the_cache_keeps_at_most_its_size_and_forgets_the_least_recently_used():
    cache: BoundedCache[int, str] = BoundedCache(3)
    for key in range(3):
        cache.put(key, f"v{key}")
    assert cache.get(0) == "v0"  # 0 is now the most recently used; 1 the least
    cache.put(3, "v3")
    assert len(cache) == 3
    assert 1 not in cache
    assert [cache.get(k) for k in (0, 2, 3)] == ["v0", "v2", "v3"]
    for key in range(100):
        cache.put(key, "x")
    assert len(cache) == 3


def test_clearing_forgets_everything():
    cache: BoundedCache[str, int] = BoundedCache(2)
    cache.put("a", 1)
    cache.clear()
    assert len(cache) == 0
    assert cache.get("a") is None


def test_a_cache_of_no_size_is_refused():
    with pytest.raises(ValueError, match="maxsize"):
        BoundedCache(0)


@pytest.mark.django_db
def test_a_worker_remembers_no_more_projects_and_jobs_than_its_memo_holds(monkeypatch, project):
    monkeypatch.setattr(service, "_fixed_jobs", BoundedCache(2))
    monkeypatch.setattr(service, "_projects", BoundedCache(2))
    projects = [project] + [
        Project.objects.create(name=f"memo {n}", slug=f"memo-{n}", criteria=project.criteria) for n in range(3)
    ]
    for each in projects:
        job = job_create(project=each, user=None, kind="draft", selection={})
        item = SimpleNamespace(
            job_id=job.pk,
            job_created_at=job.created_at,
            job_state=job.state,
            job_budget=job.budget,
            project_updated_at=each.updated_at,
        )
        assert service._job_of(item).project == each
    assert len(service._fixed_jobs) == 2 and len(service._projects) == 2
    service.clear_memos()
    assert len(service._fixed_jobs) == 0 and len(service._projects) == 0
