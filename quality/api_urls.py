"""The quality API, under /api/."""

from django.urls import path

from . import api

urlpatterns = [
    path("projects/<slug:slug>/quality/", api.ProjectQuality.as_view(), name="api-quality"),
]
