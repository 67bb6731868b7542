from django.apps import AppConfig


class AnnotatorConfig(AppConfig):
    """The project package as an app, so that its signal receivers are connected in every process."""

    name = "annotator"
    verbose_name = "Annotator"

    def ready(self) -> None:
        from . import passwords, tokens

        tokens.connect_signals()
        passwords.connect_signals()
