"""python manage.py llm_simulator [--port 8001] [--latency-ms MS] [--rpm N] [--fault-429 R] ...

Runs the OpenAI-compatible simulator in the foreground until SIGTERM or SIGINT, for the demo
(bin/run starts it) and for benchmarks that need latency, a rate limit or faults.
"""

import os
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from feedback.simulator import SimulatorServer, serve_forever


class Command(BaseCommand):
    help = "Serve the OpenAI-compatible LLM simulator (a test double) until interrupted."
    requires_system_checks: list[str] = []  # it touches neither models nor the database

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8001, help="0 picks a free port.")
        parser.add_argument("--latency-ms", type=float, default=0.0, help="Latency of every answer.")
        parser.add_argument(
            "--latency-ms-max", type=float, default=None, help="Makes latency uniform in [latency-ms, this]."
        )
        parser.add_argument("--rpm", type=float, default=0.0, help="Own rate limit, requests per minute.")
        parser.add_argument("--tpm", type=float, default=0.0, help="Own rate limit, prompt tokens per minute.")
        for kind, what in (
            ("429", "429 with Retry-After"),
            ("5xx", "500 or 503"),
            ("hang", "a hang, then 504"),
            ("malformed", "content that is not valid JSON"),
            ("missing-field", "JSON without one required property"),
            ("truncated", "content cut short, finish_reason length"),
        ):
            parser.add_argument(f"--fault-{kind}", type=float, default=0.0, metavar="RATE", help=f"Rate of {what}.")
        parser.add_argument("--hang-seconds", type=float, default=30.0)
        parser.add_argument("--retry-after", type=float, default=1.0, help="Retry-After of injected 429s.")
        parser.add_argument("--seed", type=int, default=0, help="Seed of the fault RNG.")
        parser.add_argument(
            "--require-key-env",
            metavar="VAR",
            default="",
            help="Demand the API key held in this environment variable (never pass a key on the command line).",
        )

    def handle(self, *args: Any, **opts: Any) -> None:
        config = {
            key: opts[key]
            for key in (
                "host",
                "port",
                "latency_ms",
                "latency_ms_max",
                "rpm",
                "tpm",
                "fault_429",
                "fault_5xx",
                "fault_hang",
                "fault_malformed",
                "fault_missing_field",
                "fault_truncated",
                "hang_seconds",
                "retry_after",
                "seed",
            )
        }

        if opts["require_key_env"]:
            key = os.environ.get(opts["require_key_env"], "")
            if not key:
                raise CommandError(f"the environment variable {opts['require_key_env']} is empty or unset")
            config["require_key"] = key

        def ready(server: SimulatorServer) -> None:
            self.stdout.write(f"LLM simulator on http://{server.config.host}:{server.port}/v1")
            self.stdout.flush()

        try:
            serve_forever(ready=ready, **config)
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        except OSError as exc:
            raise CommandError(f"cannot listen on {opts['host']}:{opts['port']}: {exc}") from None
