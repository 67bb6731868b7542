from importlib import import_module

from django.apps import AppConfig

# The app's models live beside the code that owns them: the domain in feedback/models.py, the rest in
# the sub-packages. Django registers a model when its module is imported, so the app imports each one
# here, while it loads its models; nothing re-exports them, and each is imported from its own module.
MODEL_MODULES = [
    "feedback.drafting.models",
    "feedback.jobs.models",
    "feedback.references.models",
    "feedback.review.models",
    "feedback.trials.models",
    "feedback.workers.models",
]


class FeedbackConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "feedback"
    verbose_name = "Feedback"

    def import_models(self) -> None:
        super().import_models()
        for name in MODEL_MODULES:
            import_module(name)

    def ready(self) -> None:
        # The tasks are registered in every process, so a service can send one by name (feedback/sending.py).
        import_module("feedback.tasks")
        import_module("feedback.trials.tasks")
