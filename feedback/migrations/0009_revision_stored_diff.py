"""Each revision keeps its word diff (computed once, when saved); existing revisions get theirs here."""

from django.db import migrations, models

from feedback.review.diff import revision_diff

BATCH = 500


def backfill(apps, schema_editor):
    """Each revision against the one before it in its chain, the first against its draft: what the
    history showed, computed per request until now. Chains are walked in order, a batch at a time."""
    Revision = apps.get_model("feedback", "Revision")
    Draft = apps.get_model("feedback", "Draft")
    order = ("assignment_id", "turn_id", "version")
    pks = list(Revision.objects.filter(diff__isnull=True).order_by(*order).values_list("pk", flat=True))
    previous = None
    for start in range(0, len(pks), BATCH):
        batch = list(Revision.objects.filter(pk__in=pks[start : start + BATCH]).order_by(*order))
        drafts = Draft.objects.filter(pk__in={r.draft_id for r in batch if r.draft_id}).only("critique", "refinement")
        by_pk = {draft.pk: draft for draft in drafts}
        for revision in batch:
            chain = (revision.assignment_id, revision.turn_id)
            before = previous if previous is not None and (previous.assignment_id, previous.turn_id) == chain else None
            if before is None:
                before = by_pk.get(revision.draft_id)
            revision.diff = revision_diff(before, critique=revision.critique, refinement=revision.refinement)
            previous = revision
        Revision.objects.bulk_update(batch, ["diff"])


class Migration(migrations.Migration):
    dependencies = [
        ("feedback", "0008_project_llm_connection"),
    ]

    operations = [
        migrations.AddField(
            model_name="revision",
            name="diff",
            field=models.JSONField(
                blank=True,
                editable=False,
                help_text="Word diffs of critique and refinement ({field: [[op, text], ...]}) against the previous "
                "revision of the chain, the first against its draft: computed once, when saved (null: not yet).",
                null=True,
            ),
        ),
        migrations.RunPython(backfill, migrations.RunPython.noop),
    ]
