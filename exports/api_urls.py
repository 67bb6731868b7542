"""The releases API, under /api/."""

from django.urls import path

from . import api

RELEASES = "projects/<slug:slug>/releases/"

urlpatterns = [
    path(RELEASES, api.ReleaseListCreate.as_view(), name="api-release-list"),
    path(RELEASES + "<int:pk>/", api.ReleaseDetail.as_view(), name="api-release-detail"),
    path(RELEASES + "<int:pk>/cancel/", api.ReleaseCancel.as_view(), name="api-release-cancel"),
    path(RELEASES + "<int:pk>/files/<path:path>", api.ReleaseFileDownload.as_view(), name="api-release-file"),
]
