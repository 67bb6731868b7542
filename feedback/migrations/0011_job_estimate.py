from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("feedback", "0010_project_archive_and_lease"),
    ]

    operations = [
        migrations.AddField(
            model_name="job",
            name="estimate",
            field=models.JSONField(
                blank=True,
                default=dict,
                help_text="What the dry run said before launch: calls, tokens, cost, time.",
            ),
        ),
    ]
