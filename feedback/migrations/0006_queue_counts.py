"""The queue state counts its project's queue items and the closed (fully reviewed) ones.

The review page and the review home show "reviewed / total" on every render; counting the
project's queue items each time cost 5 to 13 ms on 63,000 samples, most of a page's database
time. Triggers on the queue items keep the two counts in the queue state instead, in the same
transaction as the insert, the update of ``open`` or the delete, whatever code runs it (the
queue, the admin, a cascade). The counts of existing queues are filled in here.
"""

from django.db import migrations, models

# PostgreSQL: statement-level triggers with transition tables, so that a bulk insert, a re-sort
# or a cascade updates the count once per statement; an update that opens or closes nothing
# (a lease's ``holding``, a sort key) writes nothing and takes no lock on the state row.
POSTGRESQL_INSTALL = [
    """
    CREATE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP = 'INSERT' THEN
            INSERT INTO {state} AS state (project_id, order_signature, items, closed)
            SELECT project_id, '', count(*), count(*) FILTER (WHERE NOT open) FROM new_rows GROUP BY project_id
            ON CONFLICT (project_id) DO UPDATE
            SET items = state.items + EXCLUDED.items, closed = state.closed + EXCLUDED.closed;
        ELSIF TG_OP = 'DELETE' THEN
            UPDATE {state} AS state SET items = state.items - gone.items, closed = state.closed - gone.closed
            FROM (
                SELECT project_id, count(*) AS items, count(*) FILTER (WHERE NOT open) AS closed
                FROM old_rows GROUP BY project_id
            ) AS gone
            WHERE state.project_id = gone.project_id;
        ELSE
            UPDATE {state} AS state SET items = state.items + delta.items, closed = state.closed + delta.closed
            FROM (
                SELECT project_id, sum(items) AS items, sum(closed) AS closed FROM (
                    SELECT project_id, 1 AS items, (NOT open)::int AS closed FROM new_rows
                    UNION ALL
                    SELECT project_id, -1, -(NOT open)::int FROM old_rows
                ) AS moves
                GROUP BY project_id
                HAVING sum(items) <> 0 OR sum(closed) <> 0
            ) AS delta
            WHERE state.project_id = delta.project_id;
        END IF;
        RETURN NULL;
    END $$
    """,
    """
    CREATE TRIGGER {trigger_insert} AFTER INSERT ON {items}
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION {function}()
    """,
    """
    CREATE TRIGGER {trigger_update} AFTER UPDATE ON {items}
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION {function}()
    """,
    """
    CREATE TRIGGER {trigger_delete} AFTER DELETE ON {items}
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION {function}()
    """,
]
POSTGRESQL_REMOVE = [
    "DROP TRIGGER IF EXISTS {trigger_insert} ON {items}",
    "DROP TRIGGER IF EXISTS {trigger_update} ON {items}",
    "DROP TRIGGER IF EXISTS {trigger_delete} ON {items}",
    "DROP FUNCTION IF EXISTS {function}()",
]
# SQLite has row-level triggers only.
SQLITE_INSTALL = [
    """
    CREATE TRIGGER {trigger_insert} AFTER INSERT ON {items} BEGIN
        INSERT INTO {state} (project_id, order_signature, items, closed)
        VALUES (NEW.project_id, '', 1, NOT NEW.open)
        ON CONFLICT (project_id) DO UPDATE SET items = items + 1, closed = closed + excluded.closed;
    END
    """,
    """
    CREATE TRIGGER {trigger_update} AFTER UPDATE OF open, project_id ON {items}
    WHEN OLD.open IS NOT NEW.open OR OLD.project_id IS NOT NEW.project_id BEGIN
        UPDATE {state} SET items = items - 1, closed = closed - (NOT OLD.open) WHERE project_id = OLD.project_id;
        INSERT INTO {state} (project_id, order_signature, items, closed)
        VALUES (NEW.project_id, '', 1, NOT NEW.open)
        ON CONFLICT (project_id) DO UPDATE SET items = items + 1, closed = closed + excluded.closed;
    END
    """,
    """
    CREATE TRIGGER {trigger_delete} AFTER DELETE ON {items} BEGIN
        UPDATE {state} SET items = items - 1, closed = closed - (NOT OLD.open) WHERE project_id = OLD.project_id;
    END
    """,
]
SQLITE_REMOVE = [
    "DROP TRIGGER IF EXISTS {trigger_insert}",
    "DROP TRIGGER IF EXISTS {trigger_update}",
    "DROP TRIGGER IF EXISTS {trigger_delete}",
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
        "items": quote(apps.get_model("feedback", "QueueItem")._meta.db_table),
        "state": quote(apps.get_model("feedback", "QueueState")._meta.db_table),
        "function": "review_queue_count",
        "trigger_insert": "review_queue_count_insert",
        "trigger_update": "review_queue_count_update",
        "trigger_delete": "review_queue_count_delete",
    }
    install_statements, remove_statements = STATEMENTS[vendor]
    for statement in install_statements if install else remove_statements:
        schema_editor.execute(statement.format(**names))


def install_triggers(apps, schema_editor) -> None:
    _run(apps, schema_editor, install=True)


def remove_triggers(apps, schema_editor) -> None:
    _run(apps, schema_editor, install=False)


def count_existing(apps, schema_editor) -> None:
    QueueItem = apps.get_model("feedback", "QueueItem")
    QueueState = apps.get_model("feedback", "QueueState")
    counts = (
        QueueItem.objects.order_by()
        .values("project_id")
        .annotate(items=models.Count("id"), closed=models.Count("id", filter=models.Q(open=False)))
    )
    for row in counts:
        QueueState.objects.update_or_create(
            project_id=row["project_id"], defaults={"items": row["items"], "closed": row["closed"]}
        )


class Migration(migrations.Migration):
    dependencies = [
        ("feedback", "0005_queue_changes"),
    ]

    operations = [
        migrations.AddField(
            model_name="queuestate",
            name="closed",
            field=models.PositiveIntegerField(
                default=0, help_text="Of them, closed: fully reviewed (kept by a trigger)."
            ),
        ),
        migrations.AddField(
            model_name="queuestate",
            name="items",
            field=models.PositiveIntegerField(default=0, help_text="Queue items of the project (kept by a trigger)."),
        ),
        migrations.RunPython(count_existing, migrations.RunPython.noop),
        migrations.RunPython(install_triggers, remove_triggers),
    ]
