"""API routes. The login-page middleware steps aside here: DRF authenticates (token or session)."""

from django.contrib.auth.decorators import login_not_required
from django.urls import path
from rest_framework.authtoken.views import obtain_auth_token

from ..jobs import api as jobs_api
from . import views

urlpatterns = [
    path("auth/token/", obtain_auth_token, name="api-token"),
    path("projects/", views.ProjectList.as_view(), name="api-project-list"),
    path("projects/<slug:slug>/", views.ProjectDetail.as_view(), name="api-project-detail"),
    path("projects/<slug:slug>/samples/", views.SampleList.as_view(), name="api-sample-list"),
    path("projects/<slug:slug>/imports/", views.ImportCreate.as_view(), name="api-import-list"),
    path("projects/<slug:slug>/imports/<int:pk>/", views.ImportDetail.as_view(), name="api-import-detail"),
    path("projects/<slug:slug>/jobs/", jobs_api.JobListCreate.as_view(), name="api-job-list"),
    path("projects/<slug:slug>/jobs/<int:pk>/", jobs_api.JobDetail.as_view(), name="api-job-detail"),
    path("projects/<slug:slug>/jobs/<int:pk>/<str:action>/", jobs_api.JobAction.as_view(), name="api-job-action"),
]
for pattern in urlpatterns:
    pattern.callback = login_not_required(pattern.callback)
