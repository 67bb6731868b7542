"""The quality pages."""

from django.urls import path

from . import trial_views, views

app_name = "quality"

urlpatterns = [
    path("projects/<slug:slug>/quality/", views.quality_page, name="page"),
    path("projects/<slug:slug>/trials/", trial_views.trial_list, name="trial-list"),
    path("projects/<slug:slug>/trials/<int:pk>/", trial_views.trial_detail, name="trial-detail"),
    path(
        "projects/<slug:slug>/trials/<int:pk>/variants/<str:label>/promote/",
        trial_views.trial_promote,
        name="trial-promote",
    ),
]
