"""Releases in the admin: read-only, since a release is never edited once made; the pages and the
API create them."""

from django.contrib import admin

from .models import Release, ReleaseFile


class ReleaseFileInline(admin.TabularInline):
    model = ReleaseFile
    fields = ("path", "format", "split", "rows", "byte_size", "sha256")
    readonly_fields = ("path", "format", "split", "rows", "byte_size", "sha256")
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Release)
class ReleaseAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "name",
        "project",
        "state",
        "samples_done",
        "samples_total",
        "samples_released",
        "created_by",
        "created_at",
    ]
    list_filter = ["state", "project"]
    search_fields = ["name", "project__name", "project__slug"]
    list_select_related = ["project", "created_by"]
    inlines = [ReleaseFileInline]

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in Release._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
