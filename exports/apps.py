from importlib import import_module

from django.apps import AppConfig


class ExportsConfig(AppConfig):
    """Dataset releases (formats, export jobs, manifests); built in the exports issue."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "exports"
    verbose_name = "Exports"

    def ready(self) -> None:
        # The tasks are registered in every process, so the service can send one by name.
        import_module("exports.tasks")
