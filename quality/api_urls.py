"""The quality API, under /api/."""

from django.urls import path

from . import annotator_api, api, trial_api

urlpatterns = [
    path("projects/<slug:slug>/quality/", api.ProjectQuality.as_view(), name="api-quality"),
    path("projects/<slug:slug>/trials/", trial_api.TrialList.as_view(), name="api-trial-list"),
    path("projects/<slug:slug>/trials/<int:pk>/", trial_api.TrialDetail.as_view(), name="api-trial-detail"),
    path("projects/<slug:slug>/trials/<int:pk>/cancel/", trial_api.TrialCancel.as_view(), name="api-trial-cancel"),
    path(
        "projects/<slug:slug>/trials/<int:pk>/variants/<str:label>/promote/",
        trial_api.TrialPromote.as_view(),
        name="api-trial-promote",
    ),
    path("projects/<slug:slug>/annotators/", annotator_api.AnnotatorList.as_view(), name="api-annotator-list"),
    path(
        "projects/<slug:slug>/annotators/<str:username>/",
        annotator_api.AnnotatorDetail.as_view(),
        name="api-annotator-detail",
    ),
]
