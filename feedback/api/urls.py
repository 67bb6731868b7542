"""The core API: projects, samples and imports. Every app contributes its own API routes
(feedback.jobs.api_urls, feedback.review.api_urls, exports.api_urls, quality.api_urls);
annotator/urls.py mounts them under /api/."""

from django.urls import path

from . import views

urlpatterns = [
    path("projects/", views.ProjectList.as_view(), name="api-project-list"),
    path("projects/<slug:slug>/", views.ProjectDetail.as_view(), name="api-project-detail"),
    path("projects/<slug:slug>/samples/", views.SampleList.as_view(), name="api-sample-list"),
    path("projects/<slug:slug>/samples/<int:pk>/", views.SampleDetail.as_view(), name="api-sample-detail"),
    path("projects/<slug:slug>/imports/", views.ImportCreate.as_view(), name="api-import-list"),
    path("projects/<slug:slug>/imports/<int:pk>/", views.ImportDetail.as_view(), name="api-import-detail"),
]
