from django.apps import AppConfig


class ExportsConfig(AppConfig):
    """Dataset releases (formats, export jobs, manifests); built in the exports issue."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "exports"
    verbose_name = "Exports"
