"""The review queue learns of new samples and drafts from notes written by triggers.

Until now ``queue_sync`` remembered the highest sample and draft ids it had seen and looked only
above them. A transaction that took its id early and committed after a newer row was never seen.
Triggers on the sample and draft tables now write a ``QueueChange`` note in the inserting
transaction itself; the sync takes the notes in and deletes them.

Samples that the old high-water marks missed get a note here, and every queue is re-sorted once
(an empty order signature) so that drafts they missed count too.
"""

import django.db.models.deletion
from django.db import migrations, models

# PostgreSQL: one statement-level trigger per table, so a bulk insert writes its notes in one go.
POSTGRESQL_INSTALL = [
    """
    CREATE FUNCTION {function_samples}() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        INSERT INTO {changes} (project_id, sample_id) SELECT added.project_id, added.id FROM added;
        RETURN NULL;
    END $$
    """,
    """
    CREATE TRIGGER {trigger_samples} AFTER INSERT ON {samples}
    REFERENCING NEW TABLE AS added FOR EACH STATEMENT EXECUTE FUNCTION {function_samples}()
    """,
    """
    CREATE FUNCTION {function_drafts}() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        INSERT INTO {changes} (project_id, sample_id)
        SELECT DISTINCT sample.project_id, sample.id
        FROM added JOIN {turns} turn ON turn.id = added.turn_id JOIN {samples} sample ON sample.id = turn.sample_id;
        RETURN NULL;
    END $$
    """,
    """
    CREATE TRIGGER {trigger_drafts} AFTER INSERT ON {drafts}
    REFERENCING NEW TABLE AS added FOR EACH STATEMENT EXECUTE FUNCTION {function_drafts}()
    """,
]
POSTGRESQL_REMOVE = [
    "DROP TRIGGER IF EXISTS {trigger_samples} ON {samples}",
    "DROP FUNCTION IF EXISTS {function_samples}()",
    "DROP TRIGGER IF EXISTS {trigger_drafts} ON {drafts}",
    "DROP FUNCTION IF EXISTS {function_drafts}()",
]
# SQLite has row-level triggers only.
SQLITE_INSTALL = [
    """
    CREATE TRIGGER {trigger_samples} AFTER INSERT ON {samples} BEGIN
        INSERT INTO {changes} (project_id, sample_id) VALUES (NEW.project_id, NEW.id);
    END
    """,
    """
    CREATE TRIGGER {trigger_drafts} AFTER INSERT ON {drafts} BEGIN
        INSERT INTO {changes} (project_id, sample_id)
        SELECT sample.project_id, sample.id
        FROM {turns} turn JOIN {samples} sample ON sample.id = turn.sample_id WHERE turn.id = NEW.turn_id;
    END
    """,
]
SQLITE_REMOVE = [
    "DROP TRIGGER IF EXISTS {trigger_samples}",
    "DROP TRIGGER IF EXISTS {trigger_drafts}",
]
STATEMENTS = {
    "postgresql": (POSTGRESQL_INSTALL, POSTGRESQL_REMOVE),
    "sqlite": (SQLITE_INSTALL, SQLITE_REMOVE),
}


def _run(apps, schema_editor, *, install: bool) -> None:
    vendor = schema_editor.connection.vendor
    if vendor not in STATEMENTS:
        raise NotImplementedError(f"The review queue's triggers are written for PostgreSQL and SQLite, not {vendor}.")
    quote = schema_editor.connection.ops.quote_name
    names = {
        "changes": quote(apps.get_model("feedback", "QueueChange")._meta.db_table),
        "samples": quote(apps.get_model("feedback", "Sample")._meta.db_table),
        "turns": quote(apps.get_model("feedback", "Turn")._meta.db_table),
        "drafts": quote(apps.get_model("feedback", "Draft")._meta.db_table),
        "trigger_samples": "review_queue_sample_added",
        "trigger_drafts": "review_queue_draft_added",
        "function_samples": "review_queue_note_samples",
        "function_drafts": "review_queue_note_drafts",
    }
    install_statements, remove_statements = STATEMENTS[vendor]
    for statement in install_statements if install else remove_statements:
        schema_editor.execute(statement.format(**names))


def install_triggers(apps, schema_editor) -> None:
    _run(apps, schema_editor, install=True)


def remove_triggers(apps, schema_editor) -> None:
    _run(apps, schema_editor, install=False)


def note_missed_samples(apps, schema_editor) -> None:
    Sample = apps.get_model("feedback", "Sample")
    QueueItem = apps.get_model("feedback", "QueueItem")
    QueueChange = apps.get_model("feedback", "QueueChange")
    QueueState = apps.get_model("feedback", "QueueState")
    missed = Sample.objects.exclude(models.Exists(QueueItem.objects.filter(sample=models.OuterRef("pk"))))
    QueueChange.objects.bulk_create(
        (
            QueueChange(project_id=project_id, sample_id=sample_id)
            for project_id, sample_id in missed.values_list("project_id", "id").iterator()
        ),
        batch_size=5000,
    )
    QueueState.objects.update(order_signature="")


class Migration(migrations.Migration):
    dependencies = [
        ("feedback", "0004_review"),
    ]

    operations = [
        migrations.RemoveField(
            model_name="queuestate",
            name="last_draft_id",
        ),
        migrations.RemoveField(
            model_name="queuestate",
            name="last_sample_id",
        ),
        migrations.CreateModel(
            name="QueueChange",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                (
                    "project",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE, related_name="+", to="feedback.project"
                    ),
                ),
                (
                    "sample",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE, related_name="+", to="feedback.sample"
                    ),
                ),
            ],
        ),
        migrations.RunPython(install_triggers, remove_triggers),
        migrations.RunPython(note_missed_samples, migrations.RunPython.noop),
    ]
