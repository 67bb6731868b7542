"""python -m simulator [--port 8001] [--latency-ms MS] [--rpm N] [--fault-429 R] ...

Runs the OpenAI-compatible simulator in the foreground until SIGTERM or SIGINT, for the demo
(bin/run starts it) and for benchmarks that need latency, a rate limit or faults. The package uses
only the standard library: it needs neither Django nor the platform's settings.
"""

from __future__ import annotations

import argparse
import os
import sys

from .server import SimulatorServer, serve_forever

FAULTS = (
    ("429", "429 with Retry-After"),
    ("5xx", "500 or 503"),
    ("hang", "a hang, then 504"),
    ("malformed", "content that is not valid JSON"),
    ("missing-field", "JSON without one required property"),
    ("truncated", "content cut short, finish_reason length"),
)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m simulator", description="Serve the OpenAI-compatible LLM simulator (a test double)."
    )
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8001, help="0 picks a free port.")
    p.add_argument("--latency-ms", type=float, default=0.0, help="Latency of every answer.")
    p.add_argument("--latency-ms-max", type=float, default=None, help="Makes latency uniform in [latency-ms, this].")
    p.add_argument("--rpm", type=float, default=0.0, help="Own rate limit, requests per minute.")
    p.add_argument("--tpm", type=float, default=0.0, help="Own rate limit, prompt tokens per minute.")
    for kind, what in FAULTS:
        p.add_argument(f"--fault-{kind}", type=float, default=0.0, metavar="RATE", help=f"Rate of {what}.")
    p.add_argument("--batch-delay-s", type=float, default=0.0, help="Batch API: seconds before a batch completes.")
    p.add_argument(
        "--batch-fail-rate", type=float, default=0.0, metavar="RATE", help="Batch API: rate of lines that fail."
    )
    p.add_argument("--hang-seconds", type=float, default=30.0)
    p.add_argument("--retry-after", type=float, default=1.0, help="Retry-After of injected 429s.")
    p.add_argument("--seed", type=int, default=0, help="Seed of the fault RNG.")
    p.add_argument(
        "--require-key-env",
        metavar="VAR",
        default="",
        help="Demand the API key held in this environment variable (never pass a key on the command line).",
    )
    return p


def main(argv: list[str] | None = None) -> int:
    opts = vars(parser().parse_args(argv))
    key_env = opts.pop("require_key_env")
    if key_env:
        key = os.environ.get(key_env, "")
        if not key:
            print(f"the environment variable {key_env} is empty or unset", file=sys.stderr)
            return 2
        opts["require_key"] = key

    def ready(server: SimulatorServer) -> None:
        print(f"LLM simulator on http://{server.config.host}:{server.port}/v1", flush=True)

    try:
        serve_forever(ready=ready, **opts)
    except ValueError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"cannot listen on {opts['host']}:{opts['port']}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
