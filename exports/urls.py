from django.urls import path

from . import views

app_name = "exports"

RELEASE = "projects/<slug:slug>/releases/<int:pk>/"

urlpatterns = [
    path("projects/<slug:slug>/releases/", views.release_list, name="release-list"),
    path("projects/<slug:slug>/releases/new/", views.release_new, name="release-new"),
    path(RELEASE, views.release_detail, name="release-detail"),
    path(RELEASE + "files/<path:path>", views.release_file, name="release-file"),
    path(RELEASE + "delete/", views.release_delete, name="release-delete"),
    path(RELEASE + "cancel/", views.release_cancel, name="release-cancel"),
]
