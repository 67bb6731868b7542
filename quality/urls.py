"""The quality pages."""

from django.urls import path

from . import annotator_views, gold_views, trial_views, views

app_name = "quality"

urlpatterns = [
    path("projects/<slug:slug>/quality/", views.quality_page, name="page"),
    path("projects/<slug:slug>/trials/", trial_views.trial_list, name="trial-list"),
    path("projects/<slug:slug>/trials/<int:pk>/", trial_views.trial_detail, name="trial-detail"),
    path("projects/<slug:slug>/trials/<int:pk>/cancel/", trial_views.trial_cancel, name="trial-cancel"),
    path(
        "projects/<slug:slug>/trials/<int:pk>/variants/<str:label>/promote/",
        trial_views.trial_promote,
        name="trial-promote",
    ),
    path("projects/<slug:slug>/gold/", gold_views.gold_page, name="gold"),
    path("projects/<slug:slug>/gold/<int:sample_pk>/retire/", gold_views.gold_retire_view, name="gold-retire"),
    path("projects/<slug:slug>/annotators/", annotator_views.annotators_page, name="annotators"),
    path("projects/<slug:slug>/annotators/<str:username>/", annotator_views.annotator_page, name="annotator"),
]
