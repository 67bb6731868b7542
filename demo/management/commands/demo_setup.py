from django.core.management.base import BaseCommand

from demo.setup import demo_setup
from exports.models import Release


class Command(BaseCommand):
    help = "Create (or refresh) the demo project, its images and samples, and the demo logins."

    def handle(self, *args, **options):
        project, logins, batches = demo_setup()
        for batch in batches:
            self.stdout.write(
                f"  {batch.format:7} {batch.file_name}: {batch.status}, {batch.created} created, "
                f"{batch.skipped} unchanged, {batch.rejected} rejected"
            )
        self.stdout.write(f"Demo project '{project.name}': {project.samples.count()} samples.")
        for job in project.jobs.order_by("pk"):
            self.stdout.write(f"  job #{job.pk}: {job.get_kind_display()}, {job.state}")
        for release in Release.objects.filter(project=project).order_by("pk"):
            self.stdout.write(f"  release #{release.pk}: {release.name}, {release.state}")
        for username, password in logins.items():
            self.stdout.write(f"  login: {username} / {password}")
