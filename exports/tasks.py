"""Celery tasks of releases: thin, routed to the ``exports`` queue by the settings."""

from celery import shared_task

from .service import RELEASE_BUILD, release_build


@shared_task(name=RELEASE_BUILD, acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def release_build_task(release_id: int) -> None:
    # Only a queued release is built, by the one attempt that claims it; one whose worker was lost
    # is queued again by the sweep (feedback/recovery.py) and built again from scratch.
    release_build(release_id=release_id)
