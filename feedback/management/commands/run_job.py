"""python manage.py run_job --project P --kind draft|respond [filters] [--budget USD] [--no-wait]

Launches a job on the workers and follows it with a progress bar until it ends (Ctrl-C stops
following, not the job).
"""

import time

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from feedback.errors import ServiceError
from feedback.jobs import selectors, service
from feedback.jobs.models import Job
from feedback.jobs.selection import STATUSES
from feedback.selectors import project_by_key


class Command(BaseCommand):
    help = "Launch an LLM job (draft feedback, or generate responses in the DRESS loop) and follow it."

    def add_arguments(self, parser):
        parser.add_argument("--project", required=True, help="Project slug, name or id.")
        parser.add_argument("--kind", choices=Job.Kind.values, default=Job.Kind.DRAFT)
        parser.add_argument("--criterion", default="")
        parser.add_argument("--status", choices=list(STATUSES), default="never")
        parser.add_argument("--import-batch", type=int)
        parser.add_argument("--sample", action="append", default=[], dest="sample_ids", help="A sample id; repeatable.")
        parser.add_argument("--limit", type=int)
        parser.add_argument("--rounds", type=int, default=1)
        parser.add_argument(
            "--mode",
            choices=Job.Mode.values,
            default=Job.Mode.LIVE,
            help="batch: through the provider's Batch API, at the batch price.",
        )
        parser.add_argument("--budget", help="US dollars; no call is made that could pass it.")
        parser.add_argument("--connection", default="", help="An LLM connection's name; default: the project's.")
        parser.add_argument("--model", default="")
        parser.add_argument(
            "--endpoint", default="", help="A base URL of no connection: called without any key, public hosts only."
        )
        parser.add_argument("--temperature", type=float)
        parser.add_argument("--structured", choices=["json_schema", "json_object", "none"])
        parser.add_argument("--send-image", action="store_true")
        parser.add_argument("--responder-connection", default="")
        parser.add_argument("--responder-model", default="")
        parser.add_argument("--responder-endpoint", default="")
        parser.add_argument(
            "--dry-run", action="store_true", help="Print what the job would send and cost; create and send nothing."
        )
        parser.add_argument("--no-wait", action="store_true", help="Launch and return at once.")
        parser.add_argument("--no-progress", action="store_true")

    def handle(self, *args, **opts):
        try:
            project = project_by_key(opts["project"])
            arguments = {
                "project": project,
                "kind": opts["kind"],
                "selection": {
                    "criterion": opts["criterion"],
                    "status": opts["status"],
                    "import_batch": opts["import_batch"],
                    "sample_ids": opts["sample_ids"],
                    "limit": opts["limit"],
                },
                "rounds": opts["rounds"],
                "mode": opts["mode"],
                "budget": opts["budget"],
                "drafter": {
                    "connection": opts["connection"],
                    "model": opts["model"],
                    "base_url": opts["endpoint"],
                    "temperature": opts["temperature"],
                    "structured": opts["structured"],
                    "send_image": opts["send_image"] or None,
                },
                "responder": {
                    "connection": opts["responder_connection"],
                    "model": opts["responder_model"],
                    "base_url": opts["responder_endpoint"],
                },
            }
            if opts["dry_run"]:
                self.stdout.write(estimate_text(service.job_dry_run(service.job_request(**arguments))))
                return
            job = service.job_create(**arguments)
        except ServiceError as exc:  # "drafter.model: …": the field and the message
            raise CommandError(str(exc)) from None
        self.stdout.write(f"Job #{job.pk} queued: {job.get_kind_display()} in {project.slug}.")
        if opts["no_wait"]:
            return
        self.follow(job, quiet=opts["no_progress"])

    def follow(self, job: Job, *, quiet: bool) -> None:
        bar = tqdm(total=0, unit="item", disable=quiet, file=self.stderr)
        try:
            while True:
                job.refresh_from_db()
                progress = selectors.job_progress(job)
                bar.total = max(progress["total"], 1)
                bar.n = progress["done"] + progress["failed"]
                bar.set_postfix(state=progress["state"], failed=progress["failed"], cost=f"${progress['cost']}")
                bar.refresh()
                if progress["state"] in (*Job.FINAL_STATES, Job.State.PAUSED):
                    break
                service.job_watch_kick(job)
                time.sleep(1)
        except KeyboardInterrupt:
            self.stdout.write("Stopped following; the job goes on.")
            return
        finally:
            bar.close()
        self.stdout.write(
            f"Job #{job.pk} {progress['state']}: {progress['done']} done, {progress['failed']} failed, "
            f"{progress['cancelled']} cancelled; {progress['tokens_in']} tokens in, {progress['tokens_out']} out, "
            f"${progress['cost']}."
        )
        if progress["stop_reason"]:
            self.stdout.write(progress["stop_reason"])
        for error in progress["latest_errors"][:5]:
            self.stdout.write(f"  {error['sample']} turn {error['turn'] + 1}: {error['error']}")


def estimate_text(estimate: dict) -> str:
    """The dry run for people: the totals, then one line per role saying how each figure was made."""
    seconds = estimate["seconds"]
    if estimate.get("mode") == "batch":
        at = "batch price, within the provider's completion window"
    else:
        at = "no rate limit set" if seconds is None else f"{seconds / 60:,.1f} min at the rate limits"
    lines = [
        f"Dry run: nothing was created or sent. {estimate['selected']:,} selected; "
        f"{estimate['rendered']:,} prompts rendered and counted.",
        f"  calls {estimate['calls']:,}, input tokens {estimate['tokens_in']:,}, "
        f"output tokens {estimate['tokens_out']:,}, cost ${float(estimate['cost']):,.4f}, {at}",
    ]
    for role in estimate["roles"]:
        price = "" if role["priced"] else " (no price for this model: counted as 0)"
        lines.append(
            f"  {role['role']} {role['model']} via {role['connection'] or role['base_url']}: {role['calls']:,} calls, "
            f"{role['tokens_in']:,} in ({role['tokenizer']}), {role['tokens_out']:,} out ({role['output']}), "
            f"${float(role['cost']):,.4f}{price}"
        )
    return "\n".join(lines)
