"""Projects choose a named LLM connection instead of a URL of their own.

A project whose URL is a connection's URL gets that connection; any other URL was never one a
superuser approved for a key, so the project falls back to the default connection and the
migration says which projects it changed.
"""

from django.db import migrations, models


def endpoints_to_connections(apps, schema_editor):
    from feedback.drafting.connections import for_url

    Project = apps.get_model("feedback", "Project")
    for project in Project.objects.exclude(llm_endpoint=""):
        name = for_url(project.llm_endpoint)
        project.llm_connection = "" if name == "default" else name
        project.save(update_fields=["llm_connection"])
        if not name:
            print(
                f"\n  project {project.slug}: its LLM URL is no connection's; it now uses the default connection"
                " (a superuser may define a connection for that URL)"
            )


def connections_to_endpoints(apps, schema_editor):
    from feedback.drafting.connections import registry

    Project = apps.get_model("feedback", "Project")
    found = registry()
    for project in Project.objects.exclude(llm_connection=""):
        if project.llm_connection in found:
            project.llm_endpoint = found[project.llm_connection].base_url
            project.save(update_fields=["llm_endpoint"])


class Migration(migrations.Migration):
    dependencies = [
        ("feedback", "0007_import_attempts_and_sweeps"),
    ]

    operations = [
        migrations.AddField(
            model_name="project",
            name="llm_connection",
            field=models.CharField(
                blank=True, help_text="Name of an LLM connection; empty uses the default one.", max_length=100
            ),
        ),
        migrations.RunPython(endpoints_to_connections, connections_to_endpoints, elidable=True),
        migrations.RemoveField(
            model_name="project",
            name="llm_endpoint",
        ),
    ]
