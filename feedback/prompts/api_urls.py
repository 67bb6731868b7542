"""Prompt versions in the API, under /api/."""

from django.urls import path

from . import api

urlpatterns = [
    path("projects/<slug:slug>/prompts/", api.PromptList.as_view(), name="api-prompt-list"),
    path("projects/<slug:slug>/prompts/preview/", api.PromptPreview.as_view(), name="api-prompt-preview"),
    path("projects/<slug:slug>/prompts/<int:number>/", api.PromptDetail.as_view(), name="api-prompt-detail"),
    path("projects/<slug:slug>/prompts/<int:number>/default/", api.PromptDefault.as_view(), name="api-prompt-default"),
]
