"""The workers API, under /api/."""

from django.urls import path

from . import api

urlpatterns = [path("workers/", api.WorkerList.as_view(), name="api-worker-list")]
