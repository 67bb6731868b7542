"""deploy/: the compose file, the Procfile and the systemd units describe the same processes, with
queues the platform routes to and variables the settings read (no typo runs a worker on a queue
nobody sends to, or sets a variable nothing reads)."""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from django.conf import settings

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
QUEUES = {route["queue"] for route in settings.CELERY_TASK_ROUTES.values()}


def compose() -> dict:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text())


def queues_of(command: str) -> set[str]:
    match = re.search(r"--queues[ =]([\w,]+)", command)
    assert match, command
    return set(match.group(1).split(","))


def test_compose_runs_every_part_of_the_layout():
    services = compose()["services"]
    assert {"postgres", "redis", "minio", "minio-init", "migrate", "web", "worker-llm", "worker-main"} <= set(services)
    workers = {name: " ".join(services[name]["command"]) for name in ("worker-llm", "worker-main")}
    assert queues_of(workers["worker-llm"]) == {"llm"} and "--pool threads" in workers["worker-llm"]
    assert queues_of(workers["worker-main"]) == {"default", "exports"}
    assert set().union(*map(queues_of, workers.values())) == QUEUES  # every routed queue has a worker
    web = services["web"]
    assert "/healthz" in " ".join(web["healthcheck"]["test"])
    for name in ("web", "worker-llm", "worker-main", "migrate"):
        env = services[name]["environment"]
        assert env["ANNOTATOR_STORAGE"] == "s3" and env["CELERY_BROKER_URL"].startswith("redis://")
        assert env["DATABASE_URL"].startswith("postgres://")
        assert services[name]["depends_on"]["minio-init"]["condition"] == "service_completed_successfully"
        assert "volumes" not in services[name]  # nothing shared on disk: database, broker and bucket only


def test_every_variable_the_deployment_sets_is_one_the_platform_reads():
    read = (ROOT / "annotator" / "settings.py").read_text()
    deploy_only = {
        "POSTGRES_PASSWORD",
        "MINIO_ROOT_USER",
        "MINIO_ROOT_PASSWORD",
        "LLM_WORKERS",
        "LLM_WORKER_CONCURRENCY",
        "MAIN_WORKER_CONCURRENCY",
        "AWS_ACCESS_KEY_ID",  # boto3 reads them
        "AWS_SECRET_ACCESS_KEY",
    }
    names = set(re.findall(r"^([A-Z][A-Z0-9_]+)=", (DEPLOY / "annotator.env.example").read_text(), re.M))
    for service in compose()["services"].values():
        if isinstance(service.get("environment"), dict):
            names |= set(service["environment"])
    names -= deploy_only | {"POSTGRES_USER", "POSTGRES_DB", "BUCKET"}

    def is_read(name: str) -> bool:
        # The stores' variables are read by kind: ANNOTATOR_S3_<NAME> through value("<NAME>").
        s3 = name.removeprefix("ANNOTATOR_S3_")
        return f'"{name}"' in read or (s3 != name and f'value("{s3}"' in read)

    unknown = sorted(n for n in names if not is_read(n))
    assert not unknown, f"set by deploy/ but read by nothing: {unknown}"


def test_the_procfile_and_the_units_run_the_same_processes():
    procfile = dict(
        line.split(":", 1)
        for line in (DEPLOY / "Procfile").read_text().splitlines()
        if line and not line.startswith("#")
    )
    assert set(procfile) == {"release", "web", "worker_llm", "worker_main"}
    assert queues_of(procfile["worker_llm"]) == {"llm"} and queues_of(procfile["worker_main"]) == {"default", "exports"}
    units = {p.name: p.read_text() for p in (DEPLOY / "systemd").glob("*.service")}
    assert set(units) == {"annotator-web.service", "annotator-worker-llm@.service", "annotator-worker-main.service"}
    assert queues_of(units["annotator-worker-llm@.service"]) == {"llm"}
    assert queues_of(units["annotator-worker-main.service"]) == {"default", "exports"}
    assert "gunicorn annotator.wsgi" in units["annotator-web.service"] and "gunicorn annotator.wsgi" in procfile["web"]
    for text in units.values():
        assert "EnvironmentFile=/etc/annotator/annotator.env" in text
