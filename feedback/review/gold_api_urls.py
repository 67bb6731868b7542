"""The gold API, under /api/."""

from django.urls import path

from . import gold_api as api

GOLD = "projects/<slug:slug>/gold/"

urlpatterns = [
    path(GOLD, api.GoldList.as_view(), name="api-gold-list"),
    path(GOLD + "<int:sample_id>/", api.GoldDetail.as_view(), name="api-gold-detail"),
]
