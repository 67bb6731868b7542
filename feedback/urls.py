from django.urls import path

from . import views
from .jobs import views as job_views
from .projects import views as project_views
from .prompts import views as prompt_views
from .review import adjudication_views
from .review import views as review_views
from .workers import views as worker_views

app_name = "feedback"

urlpatterns = [
    path("", views.project_list, name="project-list"),
    path("projects/new/", project_views.project_new, name="project-new"),
    path("projects/<slug:slug>/", views.project_detail, name="project-detail"),
    path("projects/<slug:slug>/settings/", project_views.project_settings, name="project-settings"),
    path("projects/<slug:slug>/settings/preview/", project_views.guidelines_preview, name="project-guidelines-preview"),
    path("projects/<slug:slug>/archive/", project_views.project_archive, name="project-archive"),
    path("projects/<slug:slug>/members/", project_views.project_members, name="project-members"),
    path("projects/<slug:slug>/members/<str:username>/role/", project_views.member_role, name="member-role"),
    path("projects/<slug:slug>/members/<str:username>/remove/", project_views.member_remove, name="member-remove"),
    path("projects/<slug:slug>/prompts/", prompt_views.prompt_list, name="prompt-list"),
    path("projects/<slug:slug>/prompts/new/", prompt_views.prompt_new, name="prompt-new"),
    path("projects/<slug:slug>/prompts/preview/", prompt_views.prompt_preview, name="prompt-preview"),
    path("projects/<slug:slug>/prompts/diff/", prompt_views.prompt_diff, name="prompt-diff"),
    path("projects/<slug:slug>/prompts/<int:number>/", prompt_views.prompt_detail, name="prompt-detail"),
    path("projects/<slug:slug>/prompts/<int:number>/default/", prompt_views.prompt_default, name="prompt-default"),
    path("projects/<slug:slug>/samples/", views.sample_list, name="sample-list"),
    path("projects/<slug:slug>/samples/<int:pk>/", views.sample_detail, name="sample-detail"),
    path("projects/<slug:slug>/imports/new/", views.import_new, name="import-new"),
    path("projects/<slug:slug>/imports/<int:pk>/", views.import_detail, name="import-detail"),
    path("projects/<slug:slug>/jobs/", job_views.job_list, name="job-list"),
    path("projects/<slug:slug>/jobs/new/", job_views.job_new, name="job-new"),
    path("projects/<slug:slug>/jobs/<int:pk>/", job_views.job_detail, name="job-detail"),
    path(
        "projects/<slug:slug>/jobs/<int:pk>/<str:action>/",
        job_views.job_action,
        name="job-action",
    ),
    path("projects/<slug:slug>/review/", review_views.review_home, name="review-home"),
    path("projects/<slug:slug>/review/start/", review_views.review_start, name="review-start"),
    path("projects/<slug:slug>/review/leases/", review_views.review_leases, name="review-leases"),
    path("projects/<slug:slug>/review/<int:pk>/", review_views.review_page, name="review-page"),
    path("projects/<slug:slug>/adjudication/", adjudication_views.adjudication_queue, name="adjudication-queue"),
    path(
        "projects/<slug:slug>/adjudication/<int:sample_pk>/",
        adjudication_views.adjudication_sample,
        name="adjudication-sample",
    ),
    path("images/<int:pk>/file", views.image_file, name="image-file"),
    path("workers/", worker_views.worker_list, name="worker-list"),
]
