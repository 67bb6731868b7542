"""Every task of the project is named where it is defined and routed by that exact name."""

from django.conf import settings

from annotator.celery import app

OURS = ("feedback.", "exports.")
QUEUES = {"default", "llm", "exports"}


def project_tasks() -> dict:
    app.loader.import_default_modules()
    return {name: task for name, task in app.tasks.items() if name.startswith(OURS)}


def test_every_project_task_has_a_route_of_its_own_name_to_a_known_queue():
    tasks = project_tasks()
    assert tasks, "no task of the project is registered"
    routes = settings.CELERY_TASK_ROUTES
    assert not [pattern for pattern in routes if "*" in pattern], "routes are by exact name"
    unrouted = sorted(set(tasks) - set(routes))
    assert not unrouted, f"tasks with no route: {unrouted}"
    stale = sorted(set(routes) - set(tasks))
    assert not stale, f"routes naming no task: {stale}"
    assert {route["queue"] for route in routes.values()} <= QUEUES


def test_llm_calls_and_releases_keep_their_own_queues():
    routes = settings.CELERY_TASK_ROUTES
    by_queue = {route["queue"] for name, route in routes.items() if "llm_" in name}
    assert by_queue == {"llm"}
    assert {route["queue"] for name, route in routes.items() if name.startswith("exports.")} == {"exports"}


def test_a_task_is_routed_to_its_queue_by_the_router():
    router = app.amqp.router
    for name, route in settings.CELERY_TASK_ROUTES.items():
        assert router.route({}, name)["queue"].name == route["queue"], name
