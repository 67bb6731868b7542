"""Projects and members in the API, under /api/."""

from django.urls import path

from . import api

urlpatterns = [
    path("projects/", api.ProjectList.as_view(), name="api-project-list"),
    path("projects/<slug:slug>/", api.ProjectDetail.as_view(), name="api-project-detail"),
    path("projects/<slug:slug>/members/", api.MemberList.as_view(), name="api-member-list"),
    path("projects/<slug:slug>/members/<str:username>/", api.MemberDetail.as_view(), name="api-member-detail"),
]
