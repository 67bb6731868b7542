"""The adjudication API, under /api/."""

from django.urls import path

from . import adjudication_api as api

ADJUDICATION = "projects/<slug:slug>/adjudication/"

urlpatterns = [
    path(ADJUDICATION, api.QueueList.as_view(), name="api-adjudication-list"),
    path(ADJUDICATION + "<int:sample_id>/", api.CaseDetail.as_view(), name="api-adjudication-detail"),
    path(
        ADJUDICATION + "<int:sample_id>/turns/<int:turn_id>/",
        api.AdjudicationCreate.as_view(),
        name="api-adjudication-save",
    ),
]
