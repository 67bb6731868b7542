from django import forms
from django.contrib import admin
from django.db.models import Count

from feedback.drafting.models import Draft, Generation
from feedback.jobs.models import Job, JobItem
from feedback.models import Image, ImportBatch, ImportedFeedback, Project, ProjectMembership, Sample, Turn
from feedback.review.models import Assignment, Revision

from .drafting import connections
from .review.claims import lease_end


class MembershipInline(admin.TabularInline):
    model = ProjectMembership
    extra = 1
    autocomplete_fields = ["user"]


class ProjectAdminForm(forms.ModelForm):
    """The LLM connection is chosen among those the settings define, never typed as a URL."""

    llm_connection = forms.ChoiceField(required=False, label="LLM connection")

    class Meta:
        model = Project
        fields = ["llm_connection"]  # the admin adds every other field of the project

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        field = self.fields["llm_connection"]
        assert isinstance(field, forms.ChoiceField)
        field.choices = [("", "(default)"), *((name, name) for name in connections.names())]
        field.help_text = "Where its drafts are made; superusers define connections in the settings."


@admin.register(Project)
class ProjectAdmin(admin.ModelAdmin):
    form = ProjectAdminForm
    list_display = [
        "name",
        "slug",
        "score_min",
        "score_max",
        "llm_connection",
        "llm_model",
        "prompt_version",
        "created_at",
    ]
    search_fields = ["name", "slug", "description"]
    prepopulated_fields = {"slug": ["name"]}
    inlines = [MembershipInline]


@admin.register(ProjectMembership)
class ProjectMembershipAdmin(admin.ModelAdmin):
    list_display = ["user", "project", "role"]
    list_filter = ["role", "project"]
    search_fields = ["user__username", "project__name"]
    autocomplete_fields = ["user", "project"]


class MissingFileFilter(admin.SimpleListFilter):
    title = "file"
    parameter_name = "file_state"

    def lookups(self, request, model_admin):
        return [("present", "present"), ("missing", "missing")]

    def queryset(self, request, queryset):
        if self.value() == "missing":
            return queryset.filter(file="")
        if self.value() == "present":
            return queryset.exclude(file="")
        return queryset


@admin.register(Image)
class ImageAdmin(admin.ModelAdmin):
    list_display = ["file_name", "project", "width", "height", "format", "has_file", "caption_count", "box_count"]
    list_filter = ["project", MissingFileFilter, "format"]
    search_fields = ["file_name", "sha256", "captions"]
    # The file and what was checked of it at import: a file put here by hand would skip the checks
    # (and the image page serves files by the format recorded at import).
    readonly_fields = ["file", "sha256", "width", "height", "format", "byte_size", "created_at", "updated_at"]
    list_select_related = ["project"]

    @admin.display(boolean=True, description="file")
    def has_file(self, obj):
        return not obj.is_missing

    @admin.display(description="captions")
    def caption_count(self, obj):
        return len(obj.captions)

    @admin.display(description="boxes")
    def box_count(self, obj):
        return len(obj.object_boxes)


class TurnInline(admin.StackedInline):
    model = Turn
    extra = 0
    fields = ["index", "user_message", "model_response"]


@admin.register(Sample)
class SampleAdmin(admin.ModelAdmin):
    list_display = [
        "external_id",
        "project",
        "target_criterion",
        "image",
        "source_dataset",
        "source_model",
        "turn_total",
        "updated_at",
    ]
    list_filter = ["project", "target_criterion", "source_dataset", "source_model", "import_batch"]
    search_fields = ["external_id", "image__file_name", "reference_answer", "turns__user_message"]
    list_select_related = ["project", "image"]
    raw_id_fields = ["image", "import_batch"]
    readonly_fields = ["content_hash", "import_batch", "import_line", "created_at", "updated_at"]
    inlines = [TurnInline]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(turn_total=Count("turns"))

    @admin.display(description="turns", ordering="turn_total")
    def turn_total(self, obj):
        return obj.turn_total


@admin.register(Turn)
class TurnAdmin(admin.ModelAdmin):
    list_display = ["sample", "index", "short_user_message", "has_response"]
    list_filter = ["sample__project"]
    search_fields = ["user_message", "model_response", "sample__external_id"]
    raw_id_fields = ["sample"]
    list_select_related = ["sample"]

    @admin.display(description="user message")
    def short_user_message(self, obj):
        return obj.user_message[:80]

    @admin.display(boolean=True, description="response")
    def has_response(self, obj):
        return obj.model_response is not None


@admin.register(ImportedFeedback)
class ImportedFeedbackAdmin(admin.ModelAdmin):
    list_display = ["turn", "criterion", "score", "rating_raw", "source"]
    list_filter = ["criterion", "score", "turn__sample__project"]
    search_fields = ["critique", "refinement", "turn__sample__external_id"]
    raw_id_fields = ["turn"]
    list_select_related = ["turn"]


@admin.register(ImportBatch)
class ImportBatchAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "project",
        "format",
        "file_name",
        "status",
        "records_read",
        "created",
        "updated",
        "skipped",
        "rejected",
        "created_at",
    ]
    list_filter = ["project", "format", "status"]
    search_fields = ["file_name", "file_sha256"]
    readonly_fields = [f.name for f in ImportBatch._meta.fields]
    list_select_related = ["project"]


class ReadOnlyAdmin(admin.ModelAdmin):
    """Records of what the LLM did are immutable: the admin shows them and never edits them."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Draft)
class DraftAdmin(ReadOnlyAdmin):
    list_display = ["id", "turn", "job", "status", "model", "overall", "prompt_version", "simulated", "created_at"]
    list_filter = ["status", "simulated", "model", "prompt_version", "turn__sample__project"]
    search_fields = ["critique", "refinement", "error", "turn__sample__external_id"]
    raw_id_fields = ["turn", "job"]
    list_select_related = ["turn", "job"]


@admin.register(Generation)
class GenerationAdmin(ReadOnlyAdmin):
    list_display = ["id", "turn", "job", "status", "model", "simulated", "created_at"]
    list_filter = ["status", "simulated", "model"]
    search_fields = ["raw_output", "error", "turn__sample__external_id"]
    raw_id_fields = ["turn", "job"]
    list_select_related = ["turn", "job"]


@admin.register(Job)
class JobAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "project",
        "kind",
        "state",
        "total",
        "tokens_in",
        "tokens_out",
        "cost",
        "budget",
        "created_at",
    ]
    list_filter = ["state", "kind", "project"]
    search_fields = ["stop_reason"]
    list_select_related = ["project"]


@admin.register(JobItem)
class JobItemAdmin(ReadOnlyAdmin):
    list_display = ["id", "job", "turn", "round", "state", "attempts", "throttled", "error", "updated_at"]
    list_filter = ["state", "job__project"]
    search_fields = ["error"]
    raw_id_fields = ["job", "turn"]
    list_select_related = ["job", "turn"]


@admin.register(Assignment)
class AssignmentAdmin(ReadOnlyAdmin):
    """Reviews and their leases; releasing goes through the review service, never a raw edit."""

    list_display = ["sample", "project", "reviewer", "lane", "state", "flag", "claimed_at", "expires_at", "finished_at"]
    list_filter = ["state", "flag", "project"]
    search_fields = ["sample__external_id", "reviewer__username"]
    list_select_related = ["sample", "project", "reviewer"]
    actions = ["release"]

    @admin.action(description="Release the selected leases (their samples return to the queue)")
    def release(self, request, queryset):
        released = 0
        for assignment in queryset.filter(state=Assignment.State.LEASED):
            lease_end(assignment=assignment, user=request.user, state=Assignment.State.RELEASED, by_admin=True)
            released += 1
        self.message_user(request, f"Released {released} lease(s).")


@admin.register(Revision)
class RevisionAdmin(ReadOnlyAdmin):
    list_display = ["turn", "version", "decision", "author", "assignment", "time_spent_ms", "created_at"]
    list_filter = ["decision", "assignment__project"]
    search_fields = ["turn__sample__external_id", "author__username", "critique"]
    list_select_related = ["turn", "author"]
