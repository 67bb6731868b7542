"""The review API, under /api/."""

from django.urls import path

from . import api

REVIEW = "projects/<slug:slug>/review/"
ASSIGNMENT = REVIEW + "assignments/<int:pk>/"

urlpatterns = [
    path(REVIEW + "claim/", api.Claim.as_view(), name="api-review-claim"),
    path(REVIEW + "leases/", api.LeaseList.as_view(), name="api-review-leases"),
    path(ASSIGNMENT, api.AssignmentDetail.as_view(), name="api-review-assignment"),
    path(ASSIGNMENT + "renew/", api.Renew.as_view(), name="api-review-renew"),
    path(ASSIGNMENT + "skip/", api.Skip.as_view(), name="api-review-skip"),
    path(ASSIGNMENT + "release/", api.Release.as_view(), name="api-review-release"),
    path(ASSIGNMENT + "flag/", api.FlagSample.as_view(), name="api-review-flag"),
    path(
        ASSIGNMENT + "turns/<int:turn_id>/revisions/",
        api.RevisionCreate.as_view(),
        name="api-review-revision-create",
    ),
    path(
        ASSIGNMENT + "turns/<int:turn_id>/working-copy/",
        api.WorkingCopySave.as_view(),
        name="api-review-working-copy",
    ),
    path("projects/<slug:slug>/turns/<int:turn_id>/revisions/", api.TurnHistory.as_view(), name="api-turn-history"),
]

# Adjudication has its own module of routes (feedback/review/adjudication_api_urls.py).
from .adjudication_api_urls import urlpatterns as adjudication_urlpatterns  # noqa: E402

urlpatterns += adjudication_urlpatterns

# Gold samples too (feedback/review/gold_api_urls.py).
from .gold_api_urls import urlpatterns as gold_urlpatterns  # noqa: E402

urlpatterns += gold_urlpatterns
