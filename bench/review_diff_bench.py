"""Review diff benchmark: the cost of word diffs on the review page and in a turn's history.

    .venv/bin/python bench/review_diff_bench.py [--repeat 3] [--kib 16] [--database-url URL] [--keep] [--smoke]

Set-up: a throw-away database, migrated: SQLite in a temporary directory, or with --database-url
a PostgreSQL one (dropped and created; its name must contain "bench"); one project, one
annotator, one sample of one answered turn whose draft critique is ``--kib`` KiB of a repeated
pattern, and a revision of it saved through ``revision_create`` with the same length of another:
two repetitive critiques. --pattern words: "a b a b ..." then "b a b a ..."; --pattern sentences:
"the cat sat on the mat. ..." then "the dog sat on the mat. ..." (far slower still for a
quadratic diff: minutes per request).

Measured (server time, in this process, through Django's test client, logged in as the annotator):
the save itself, then --repeat times each of the assignment's API page
(``/api/projects/<slug>/review/assignments/<pk>/``), the review page
(``/projects/<slug>/review/<pk>/``) and the turn's history (``/api/projects/<slug>/turns/<id>/revisions/``).
It prints the figures; it never fails on time, only when a page does not answer 200. --smoke: 2 KiB,
one repeat.
"""

from __future__ import annotations

import argparse
import datetime
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import SMOKE_NOTE, Database, add_common_arguments, bench_environment, code_version, migrate

SLUG = "diff-bench"


PATTERNS = {
    "words": ("a b ", "b a "),
    "sentences": ("the cat sat on the mat. ", "the dog sat on the mat. "),
}


def seed(kib: int, pattern: str):
    from django.contrib.auth import get_user_model
    from django.utils import timezone

    from feedback.drafting.models import CallStatus, Draft
    from feedback.models import Project, ProjectMembership, Role, Sample, Turn
    from feedback.review.models import Assignment

    project = Project.objects.create(name="Diff bench", slug=SLUG)
    user = get_user_model().objects.create_user("bench-annotator", password="bench-password-1")  # noqa: S106
    ProjectMembership.objects.create(project=project, user=user, role=Role.ANNOTATOR)
    sample = Sample.objects.create(project=project, external_id="s1", target_criterion="helpfulness", content_hash="s1")
    turn = Turn.objects.create(sample=sample, index=0, user_message="What is on the mat?", model_response="A cat.")
    size = kib * 1024
    old, new = ((unit * (size // len(unit) + 1))[:size] for unit in PATTERNS[pattern])
    Draft.objects.create(
        turn=turn, status=CallStatus.OK, model="m", endpoint="e", critique=old, refinement="A cat.",
        scores=dict.fromkeys(project.criteria, 4), overall=4, prompt_version="v1", prompt_hash="0" * 64,
    )  # fmt: skip
    now = timezone.now()
    assignment = Assignment.objects.create(
        project=project,
        sample=sample,
        reviewer=user,
        lane=1,
        claimed_at=now,
        expires_at=now + datetime.timedelta(hours=1),
    )
    return project, user, turn, assignment, new


def timed(call, repeat: int) -> list[float]:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        response = call()
        times.append(time.perf_counter() - started)
        if response.status_code not in (200, 201):
            raise SystemExit(f"FAIL: answered {response.status_code}")
    return times


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--kib", type=int, default=16)
    parser.add_argument("--pattern", choices=sorted(PATTERNS), default="words")
    add_common_arguments(parser, database_url="")
    args = parser.parse_args(argv)
    if args.smoke:
        args.repeat, args.kib = 1, 2
    db = Database.parse(args.database_url) if args.database_url else None
    lock = db.exclusive() if db else None
    with tempfile.TemporaryDirectory(prefix="review-diff-bench-") as tmp:
        if db:
            db.recreate()
            bench_environment(db, Path(tmp), DJANGO_ALLOWED_HOSTS="testserver")  # the test client's host
        else:
            os.environ.update(ANNOTATOR_VAR_DIR=tmp, DJANGO_ALLOWED_HOSTS="testserver")
            os.environ.pop("DATABASE_URL", None)
        try:
            run(args)
        finally:
            if db:
                from django.db import connections

                connections.close_all()
                if not args.keep:
                    db.drop()
            if lock:
                lock.close()
    if args.smoke:
        print(SMOKE_NOTE)
    return 0


def run(args: argparse.Namespace) -> None:
    migrate()
    from django.db import connection
    from django.test import Client

    from feedback.review.revisions import revision_create

    project, user, turn, assignment, new = seed(args.kib, args.pattern)
    print(f"code {code_version()}; database {connection.vendor}; two critiques of {args.kib} KiB each ({args.pattern})")
    started = time.perf_counter()
    revision_create(
        assignment=assignment, turn=turn, author=user, base_version=0, decision="edited", critique=new,
        scores=dict.fromkeys(project.criteria, 4),
    )  # fmt: skip
    print(f"save (revision_create):        {time.perf_counter() - started:8.3f} s")
    client = Client()
    client.force_login(user)
    pages = {
        "assignment (API)": f"/api/projects/{SLUG}/review/assignments/{assignment.pk}/",
        "review page (HTML)": f"/projects/{SLUG}/review/{assignment.pk}/",
        "history (API)": f"/api/projects/{SLUG}/turns/{turn.pk}/revisions/",
    }
    for name, url in pages.items():
        started = time.perf_counter()
        response = client.get(url)  # the first request also imports and compiles what the page needs
        if response.status_code != 200:
            raise SystemExit(f"FAIL {name}: {url} answered {response.status_code}")
        print(f"{name + ' (first):':30}{time.perf_counter() - started:8.3f} s")
        times = timed(lambda url=url: client.get(url), args.repeat)
        print(f"{name + ':':30}{statistics.median(times):8.3f} s median of {len(times)} (max {max(times):.3f} s)")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
