"""The core API: samples and imports. Every app contributes its own API routes
(feedback.projects.api_urls, feedback.jobs.api_urls, feedback.review.api_urls, exports.api_urls,
quality.api_urls);
annotator/urls.py mounts them under /api/."""

from django.urls import path

from . import api

urlpatterns = [
    path("projects/<slug:slug>/samples/", api.SampleList.as_view(), name="api-sample-list"),
    path("projects/<slug:slug>/samples/<int:pk>/", api.SampleDetail.as_view(), name="api-sample-detail"),
    path("projects/<slug:slug>/imports/", api.ImportCreate.as_view(), name="api-import-list"),
    path("projects/<slug:slug>/imports/<int:pk>/", api.ImportDetail.as_view(), name="api-import-detail"),
]
