"""Was the backfill of the summary tables; it moved to 0006, which adds the cube (the backfill runs
today's rebuild, which writes the cube too)."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("quality", "0003_reviewed_score_week")]

    operations: list = []
