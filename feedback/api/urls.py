"""API routes. The login-page middleware steps aside here: DRF authenticates (token or session)."""

from django.contrib.auth.decorators import login_not_required
from django.urls import path
from drf_spectacular.views import SpectacularAPIView

from annotator.token_view import ObtainToken
from exports import api as exports_api

from ..jobs import api as jobs_api
from ..review import api as review_api
from . import views

REVIEW = "projects/<slug:slug>/review/"
ASSIGNMENT = REVIEW + "assignments/<int:pk>/"
RELEASES = "projects/<slug:slug>/releases/"

urlpatterns = [
    path("auth/token/", ObtainToken.as_view(), name="api-token"),
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("projects/", views.ProjectList.as_view(), name="api-project-list"),
    path("projects/<slug:slug>/", views.ProjectDetail.as_view(), name="api-project-detail"),
    path("projects/<slug:slug>/samples/", views.SampleList.as_view(), name="api-sample-list"),
    path("projects/<slug:slug>/samples/<int:pk>/", views.SampleDetail.as_view(), name="api-sample-detail"),
    path("projects/<slug:slug>/imports/", views.ImportCreate.as_view(), name="api-import-list"),
    path("projects/<slug:slug>/imports/<int:pk>/", views.ImportDetail.as_view(), name="api-import-detail"),
    path("projects/<slug:slug>/jobs/", jobs_api.JobListCreate.as_view(), name="api-job-list"),
    path("projects/<slug:slug>/jobs/<int:pk>/", jobs_api.JobDetail.as_view(), name="api-job-detail"),
    path("projects/<slug:slug>/jobs/<int:pk>/<str:action>/", jobs_api.JobAction.as_view(), name="api-job-action"),
    path(RELEASES, exports_api.ReleaseListCreate.as_view(), name="api-release-list"),
    path(RELEASES + "<int:pk>/", exports_api.ReleaseDetail.as_view(), name="api-release-detail"),
    path(RELEASES + "<int:pk>/cancel/", exports_api.ReleaseCancel.as_view(), name="api-release-cancel"),
    path(RELEASES + "<int:pk>/files/<path:path>", exports_api.ReleaseFileDownload.as_view(), name="api-release-file"),
    path(REVIEW + "claim/", review_api.Claim.as_view(), name="api-review-claim"),
    path(REVIEW + "leases/", review_api.LeaseList.as_view(), name="api-review-leases"),
    path(ASSIGNMENT, review_api.AssignmentDetail.as_view(), name="api-review-assignment"),
    path(ASSIGNMENT + "renew/", review_api.Renew.as_view(), name="api-review-renew"),
    path(ASSIGNMENT + "skip/", review_api.Skip.as_view(), name="api-review-skip"),
    path(ASSIGNMENT + "release/", review_api.Release.as_view(), name="api-review-release"),
    path(ASSIGNMENT + "flag/", review_api.FlagSample.as_view(), name="api-review-flag"),
    path(
        ASSIGNMENT + "turns/<int:turn_id>/revisions/",
        review_api.RevisionCreate.as_view(),
        name="api-review-revision-create",
    ),
    path(
        ASSIGNMENT + "turns/<int:turn_id>/working-copy/",
        review_api.WorkingCopySave.as_view(),
        name="api-review-working-copy",
    ),
    path(
        "projects/<slug:slug>/turns/<int:turn_id>/revisions/", review_api.TurnHistory.as_view(), name="api-turn-history"
    ),
]
for pattern in urlpatterns:
    pattern.callback = login_not_required(pattern.callback)
