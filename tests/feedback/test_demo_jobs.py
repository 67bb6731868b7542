"""The demo's first jobs, drafted through the simulator by a real worker, as `bin/run` does it."""

import pytest

from demo.setup import demo_setup
from exports.models import Release
from exports.service import release_folder
from feedback.drafting.models import CallStatus, Draft
from feedback.jobs.models import Job
from feedback.models import Turn
from tests.worker import WorkerProcess

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker]


def test_the_demo_project_is_drafted_through_the_simulator(settings, llm_simulator, tmp_path):
    settings.LLM_BASE_URL = settings.RESPONDER_BASE_URL = llm_simulator.url
    llm_simulator.configure(latency_ms=100, latency_ms_max=400)  # as bin/run starts it, roughly
    project, _, _ = demo_setup()
    jobs = list(project.jobs.order_by("pk"))
    assert [j.kind for j in jobs] == [Job.Kind.DRAFT, Job.Kind.RESPOND]
    awaiting = Turn.objects.filter(sample__project=project, model_response__isnull=True).count()
    assert awaiting > 0

    worker = WorkerProcess(
        "default,llm,exports",
        log_path=tmp_path / "worker.log",
        env={"ANNOTATOR_JOB_WATCH_INTERVAL": "1", "ANNOTATOR_LLM_BASE_URL": llm_simulator.url},
    )
    try:

        def all_done():
            jobs_done = all(j.state == Job.State.COMPLETED for j in Job.objects.filter(project=project))
            return jobs_done and project.releases.get().finished

        assert worker.wait_for(all_done, timeout=60), f"the demo jobs did not finish in a minute:\n{worker.output()}"
    finally:
        worker.stop()

    turns = Turn.objects.filter(sample__project=project)
    assert not turns.filter(model_response__isnull=True).exists(), "every prompt got its response"
    drafts = Draft.objects.filter(turn__sample__project=project)
    assert drafts.exists() and not drafts.filter(status=CallStatus.FAILED).exists()
    assert all(d.simulated for d in drafts)
    assert set(turns.values_list("pk", flat=True)) == set(drafts.values_list("turn_id", flat=True))
    respond = jobs[1]
    assert respond.generations.count() == 2 * awaiting, "two rounds of the DRESS loop per prompt"
    # The demo's release of its imported feedback holds the DRESS example as it was published.
    release = project.releases.get()
    assert release.state == Release.State.COMPLETED, release.error
    published = (settings.BASE_DIR / "demo/fixtures/formats/dress_nlf_example.jsonl").read_text().splitlines()
    harmlessness = (release_folder(release) / "harmlessness_nlf.jsonl").read_text().splitlines()
    assert published[0] in harmlessness
    # demo_setup again launches nothing new: the demo's jobs and release are made once.
    demo_setup()
    assert project.jobs.count() == 2
    assert project.releases.count() == 1
