"""The jobs API, under /api/."""

from django.urls import path

from . import api

urlpatterns = [
    path("projects/<slug:slug>/jobs/", api.JobListCreate.as_view(), name="api-job-list"),
    path("projects/<slug:slug>/jobs/<int:pk>/", api.JobDetail.as_view(), name="api-job-detail"),
    path("projects/<slug:slug>/jobs/<int:pk>/<str:action>/", api.JobAction.as_view(), name="api-job-action"),
]
