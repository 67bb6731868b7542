"""Fills the summary tables from the revisions already saved (none on a new database).

It calls the rebuild of ``quality.summary`` (today's code, not historical models): the summary is
derived data, rebuilt whole, and ``manage.py quality_rebuild`` does the same at any later time. A
later migration that changes the summary's columns moves this backfill after it."""

from django.db import migrations


def backfill(apps, schema_editor):
    Revision = apps.get_model("feedback", "Revision")
    if not Revision.objects.using(schema_editor.connection.alias).exists():
        return
    from quality.summary import rebuild

    rebuild()


class Migration(migrations.Migration):
    dependencies = [("quality", "0003_reviewed_score_week")]

    operations = [migrations.RunPython(backfill, migrations.RunPython.noop, elidable=True)]
