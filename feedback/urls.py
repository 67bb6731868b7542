from django.urls import path

from . import views

app_name = "feedback"

urlpatterns = [
    path("", views.project_list, name="project-list"),
    path("projects/<slug:slug>/", views.project_detail, name="project-detail"),
    path("projects/<slug:slug>/samples/", views.sample_list, name="sample-list"),
    path("projects/<slug:slug>/samples/<int:pk>/", views.sample_detail, name="sample-detail"),
    path("projects/<slug:slug>/imports/new/", views.import_new, name="import-new"),
    path("projects/<slug:slug>/imports/<int:pk>/", views.import_detail, name="import-detail"),
    path("images/<int:pk>/file", views.image_file, name="image-file"),
]
