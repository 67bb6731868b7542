"""Was the backfill of the summary tables; it moved to 0004, after the last change of their columns
(the backfill runs today's rebuild, which writes every column)."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("quality", "0001_initial")]

    operations: list = []
