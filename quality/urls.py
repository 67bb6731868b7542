"""The quality pages."""

from django.urls import path

from . import views

app_name = "quality"

urlpatterns = [
    path("projects/<slug:slug>/quality/", views.quality_page, name="page"),
]
