"""Shared pieces of the benchmarks: a throw-away PostgreSQL database, child processes that are
always cleaned up, and CPU accounting read from /proc (no third-party dependency).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


# --------------------------------------------------------------------------------------------
# Test data shared by the benchmarks: what the generated captions and questions talk about

COLOURS = ["red", "blue", "green", "yellow", "white", "black", "orange", "grey", "brown", "purple"]
SUBJECTS = [
    ("double decker bus", "driving down a busy street"),
    ("dog", "lying on a wooden porch"),
    ("kitchen", "with a tiled counter and a kettle"),
    ("skateboarder", "jumping over a concrete ledge"),
    ("train", "waiting at a platform in the rain"),
    ("giraffe", "eating leaves from a tall tree"),
    ("pizza", "sitting on a table next to two glasses"),
    ("laptop", "open on a desk beside a coffee mug"),
    ("umbrella", "held by a woman crossing a square"),
    ("bicycle", "leaning against a brick wall"),
    ("sailing boat", "moored in a small harbour"),
    ("clock tower", "rising above the roofs of a town"),
    ("tennis player", "reaching for a high ball"),
    ("cat", "curled up on a sofa cushion"),
    ("plate of vegetables", "arranged on a white plate"),
    ("fire hydrant", "standing at the corner of a street"),
]


# --------------------------------------------------------------------------------------------
# Database


@dataclass(frozen=True)
class Database:
    """A PostgreSQL database the benchmark may drop and create: its name must contain "bench"."""

    url: str
    host: str
    port: int
    user: str
    password: str
    name: str

    @classmethod
    def parse(cls, url: str) -> Database:
        parts = urlsplit(url)
        if parts.scheme not in {"postgres", "postgresql", "pgsql"}:
            raise SystemExit(f"--database-url must be a PostgreSQL URL, got scheme {parts.scheme!r}")
        name = unquote(parts.path.lstrip("/"))
        if "bench" not in name:
            raise SystemExit(f"refusing to drop and create database {name!r}: its name must contain 'bench'")
        return cls(
            url=url,
            host=parts.hostname or "127.0.0.1",
            port=parts.port or 5432,
            user=unquote(parts.username or "postgres"),
            password=unquote(parts.password or ""),
            name=name,
        )

    def admin(self):
        import psycopg2

        conn = psycopg2.connect(
            host=self.host, port=self.port, user=self.user, password=self.password or None, dbname="postgres"
        )
        conn.autocommit = True
        return conn

    def recreate(self) -> str:
        """Drop and create the database; returns the server's version."""
        from psycopg2 import sql

        conn = self.admin()
        try:
            with conn.cursor() as cur:
                self._drop(cur)
                cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(self.name)))
                cur.execute("SHOW server_version")
                return cur.fetchone()[0]
        finally:
            conn.close()

    def drop(self) -> None:
        conn = self.admin()
        try:
            with conn.cursor() as cur:
                self._drop(cur)
        finally:
            conn.close()

    def exclusive(self, *names: str):
        """Hold PostgreSQL advisory locks named after this database and `names` (the broker, say) for as
        long as the returned connection stays open; SystemExit when another run holds one: two runs
        would drop each other's database and flush each other's broker."""
        conn = self.admin()
        with conn.cursor() as cur:
            for name in (f"bench database {self.name}", *names):
                cur.execute("SELECT pg_try_advisory_lock(hashtext(%s))", [name])
                if not cur.fetchone()[0]:
                    conn.close()
                    raise SystemExit(f"another benchmark is using {name!r} on this server; wait for it to end")
        return conn

    def stats(self) -> dict[str, int]:
        """The database's counters (sessions opened, transactions, rows written): for deltas."""
        conn = self.admin()
        try:
            with conn.cursor() as cur:
                cur.execute(
                    "SELECT sessions, xact_commit, xact_rollback, tup_inserted, tup_updated, tup_fetched "
                    "FROM pg_stat_database WHERE datname = %s",
                    [self.name],
                )
                row = cur.fetchone()
        finally:
            conn.close()
        names = ("sessions", "commits", "rollbacks", "inserted", "updated", "fetched")
        return dict(zip(names, (int(v or 0) for v in row), strict=True)) if row else dict.fromkeys(names, 0)

    def _drop(self, cur) -> None:
        from psycopg2 import sql

        cur.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            [self.name],
        )
        cur.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(self.name)))


def code_version() -> str:
    """The commit measured, and the files changed since (the figures depend on them)."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT, capture_output=True, text=True
        )
    except OSError:
        return "unknown (no git)"
    changed = [line[3:] for line in dirty.stdout.splitlines() if line.strip()]
    return f"{head.stdout.strip() or 'unknown'}" + (f" with changes to {', '.join(changed)}" if changed else "")


def setup_django() -> None:
    os.environ["DJANGO_SETTINGS_MODULE"] = "annotator.settings"
    import django

    django.setup()


def flush_redis(url: str) -> None:
    """Empty the Redis database of `url` (the broker's, which the rate limiter shares)."""
    import redis

    client = redis.Redis.from_url(url)
    try:
        client.flushdb()
    finally:
        client.close()


# --------------------------------------------------------------------------------------------
# Bulk seeding with COPY


def copy_text(value: Any) -> str:
    """One value in PostgreSQL's COPY text format: NULL as \\N, JSON for dicts and lists."""
    if value is None:
        return "\\N"
    if value is True or value is False:
        return "t" if value else "f"
    if isinstance(value, str):
        text = value
    elif isinstance(value, dict | list):
        text = json.dumps(value)
    elif isinstance(value, datetime | date):
        return value.isoformat()
    else:
        return str(value)
    if "\\" in text or "\t" in text or "\n" in text or "\r" in text:
        text = text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
    return text


def copy_rows(cursor: Any, model: Any, fields: Sequence[str], rows: Iterable[Sequence[Any]]) -> int:
    """COPY ``rows`` into ``model``'s table (a Django cursor on PostgreSQL): each row holds the
    values of ``fields`` (attnames such as ``sample_id``, the primary key among them); every
    other column gets the model's default, worked out once (``auto_now`` ones: now). Returns the
    number of rows. Much faster than bulk_create for millions of rows; no signals, no checks
    beyond the database's own."""
    from django.utils import timezone

    concrete = {f.attname: f for f in model._meta.concrete_fields}
    unknown = sorted(set(fields) - set(concrete))
    if unknown:
        raise ValueError(f"{model.__name__} has no fields {unknown}")
    now = timezone.now()
    rest: list[tuple[str, Any]] = []
    for name, f in concrete.items():
        if name in fields:
            continue
        value: Any
        if getattr(f, "auto_now", False) or getattr(f, "auto_now_add", False):
            value = now
        elif f.has_default():
            value = f.get_default()
        elif f.null:
            value = None
        elif f.blank and f.empty_strings_allowed and not f.primary_key:
            value = ""
        else:
            raise ValueError(f"{model.__name__}.{name} has no default: the seeder must give it")
        rest.append((f.column, value))
    columns = [concrete[name].column for name in fields] + [column for column, _ in rest]
    tail = "".join("\t" + copy_text(value) for _, value in rest) + "\n"
    buffer = io.StringIO()
    count = 0
    for row in rows:
        buffer.write("\t".join([copy_text(value) for value in row]))
        buffer.write(tail)
        count += 1
    buffer.seek(0)
    quoted = ", ".join(f'"{column}"' for column in columns)
    cursor.copy_expert(f'COPY "{model._meta.db_table}" ({quoted}) FROM STDIN', buffer)
    return count


def reset_sequences(cursor: Any, models: Iterable[Any]) -> None:
    """After rows were copied with their own ids: the next id of each table follows its largest."""
    for model in models:
        table, pk = model._meta.db_table, model._meta.pk.column
        largest = f'COALESCE((SELECT MAX("{pk}") FROM "{table}"), 0) + 1'  # noqa: S608 - names from the model
        cursor.execute(f"SELECT setval(pg_get_serial_sequence(%s, %s), {largest}, false)", [table, pk])


# --------------------------------------------------------------------------------------------
# Memory of this process, from /proc


def proc_status_kb(field: str) -> int:
    """A memory figure of this process from /proc/self/status, in kB (0 if unavailable)."""
    try:
        text = Path("/proc/self/status").read_text()
    except OSError:
        return 0
    match = re.search(rf"^{field}:\s+(\d+)\s+kB", text, re.MULTILINE)
    return int(match.group(1)) if match else 0


def reset_peak_rss() -> bool:
    """Resets VmHWM to the current RSS (Linux 4.0+), so that the next reading is this phase's peak."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def peak_rss_kb() -> int:
    """The peak RSS (VmHWM) since the process started or since reset_peak_rss()."""
    peak = proc_status_kb("VmHWM")
    if peak:
        return peak
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def print_profile(what: str, path: Path, limit: int = 25) -> None:
    """The top of a cProfile dump, by own and by cumulative time."""
    import pstats

    stats = pstats.Stats(str(path))
    print(f"\nProfile of {what} (cProfile, {path}): top {limit} by own time")
    stats.sort_stats("tottime").print_stats(limit)
    print(f"Top {limit} by cumulative time")
    stats.sort_stats("cumulative").print_stats(limit)


# --------------------------------------------------------------------------------------------
# CPU time from /proc


@dataclass(frozen=True)
class ProcStat:
    pid: int
    ppid: int
    comm: str
    own: float  # user + system seconds of the process (all its threads)
    reaped: float  # user + system seconds of its children that it has waited for
    system: float  # the system (kernel) part of own + reaped


def _read_stat(pid: int) -> ProcStat | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name may hold spaces and parentheses: it ends at the last ')'.
    comm = text[text.index("(") + 1 : text.rindex(")")]
    rest = text[text.rindex(")") + 2 :].split()
    utime, stime, cutime, cstime = (int(v) for v in rest[11:15])
    return ProcStat(
        pid,
        int(rest[1]),
        comm,
        (utime + stime) / CLOCK_TICKS,
        (cutime + cstime) / CLOCK_TICKS,
        (stime + cstime) / CLOCK_TICKS,
    )


def all_processes() -> dict[int, ProcStat]:
    found = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            stat = _read_stat(int(entry))
            if stat is not None:
                found[stat.pid] = stat
    return found


def process_tree(root: int, table: dict[int, ProcStat] | None = None) -> list[ProcStat]:
    """The process and all its live descendants."""
    table = all_processes() if table is None else table
    children: dict[int, list[int]] = {}
    for stat in table.values():
        children.setdefault(stat.ppid, []).append(stat.pid)
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        if pid in table:
            found.append(table[pid])
            todo.extend(children.get(pid, []))
    return found


def tree_cpu(stats: Iterable[ProcStat]) -> float:
    """CPU seconds of a process tree, its reaped children included: a process that ends between two
    readings moves its time into its parent's reaped share, so a difference of two readings stays exact."""
    return sum(s.own + s.reaped for s in stats)


def roots_named(table: dict[int, ProcStat], match: Callable[[str], bool]) -> list[int]:
    """Processes whose name matches and whose parent's does not (a server's main process)."""
    return [s.pid for s in table.values() if match(s.comm) and not (s.ppid in table and match(table[s.ppid].comm))]


def machine_cpu() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot, all cores."""
    fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    total = sum(fields[:8])  # guest time is already inside user
    idle = fields[3] + fields[4]
    return (total - idle) / CLOCK_TICKS, total / CLOCK_TICKS


@dataclass
class CpuSnapshot:
    """CPU seconds of the parts of the system at one moment."""

    at: float
    parts: dict[str, float]
    detail: dict[str, dict[int, float]]  # part -> pid -> own seconds (to tell a main process from its pool)
    machine_busy: float
    machine_total: float

    def minus(self, earlier: CpuSnapshot) -> dict[str, float]:
        out = {name: value - earlier.parts.get(name, 0.0) for name, value in self.parts.items()}
        out["machine busy"] = self.machine_busy - earlier.machine_busy
        out["machine total"] = self.machine_total - earlier.machine_total
        out["wall"] = self.at - earlier.at
        return out


def cpu_snapshot(trees: dict[str, int], single: dict[str, int] | None = None) -> CpuSnapshot:
    """`trees`: part name -> root pid, its whole tree counted; `single`: part name -> pid, that process
    alone (this one, whose children are parts of their own). PostgreSQL and Redis are found by name."""
    table = all_processes()
    parts: dict[str, float] = {}
    detail: dict[str, dict[int, float]] = {}
    for name, pid in trees.items():
        tree = process_tree(pid, table)
        parts[name] = tree_cpu(tree)
        parts[f"{name} system"] = sum(s.system for s in tree)
        detail[name] = {s.pid: s.own for s in tree}
    for name, pid in (single or {}).items():
        parts[name] = table[pid].own if pid in table else 0.0
    for name, match in (
        ("postgresql", lambda comm: comm.startswith("postgres")),
        ("redis", lambda comm: comm.startswith("redis-server")),
    ):
        parts[name] = sum(tree_cpu(process_tree(pid, table)) for pid in roots_named(table, match))
    busy, total = machine_cpu()
    return CpuSnapshot(time.time(), parts, detail, busy, total)


# --------------------------------------------------------------------------------------------
# Child processes


class Child:
    """A child process leading its own process group, with its output in a log file; stop() ends the
    whole group (a Celery worker's pool processes with it), politely first."""

    def __init__(self, name: str, argv: list[str], *, env: dict[str, str], log_path: Path) -> None:
        self.name = name
        self.log_path = log_path
        self._log = open(log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            argv, cwd=ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True
        )

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def output(self, tail: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-tail:]
        except OSError:
            return ""

    def wait_for(self, predicate: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            if not self.alive():
                raise RuntimeError(f"{self.name} exited with {self.process.returncode}:\n{self.output()}")
            time.sleep(0.2)
        raise RuntimeError(f"{self.name}: {what} not within {timeout:.0f} s:\n{self.output()}")

    def stop(self, grace: float = 20.0) -> None:
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=grace)
        # Whatever is left of the group (pool processes that outlived their parent) goes now.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=5)
        self._log.close()


class Children:
    """Every child started, stopped in reverse order however the run ends."""

    def __init__(self) -> None:
        self._children: list[Child] = []

    def start(self, name: str, argv: list[str], *, env: dict[str, str], log_path: Path) -> Child:
        child = Child(name, argv, env=env, log_path=log_path)
        self._children.append(child)
        return child

    def stop(self, child: Child) -> None:
        child.stop()
        if child in self._children:
            self._children.remove(child)

    def stop_all(self) -> None:
        while self._children:
            self._children.pop().stop()


def raise_on_sigterm() -> None:
    """Turn SIGTERM into KeyboardInterrupt, so that `finally` blocks clean up as on Ctrl-C."""

    def handler(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, handler)


def http_json(url: str, body: dict[str, Any] | None = None, timeout: float = 10.0) -> Any:
    """GET (or POST `body` as JSON) a loopback URL and decode its JSON answer."""
    data = None if body is None else json.dumps(body).encode()
    if not url.startswith("http://"):
        raise ValueError(f"not a loopback http URL: {url!r}")
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})  # noqa: S310
    with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - http only, checked above
        return json.loads(response.read())


# --------------------------------------------------------------------------------------------
# What every benchmark's command line and environment share

SMOKE_NOTE = "SMOKE: targets not checked (a smoke run checks that the benchmark works, not how fast)"


def add_common_arguments(parser: Any, *, database_url: str, broker_url: str | None = None) -> None:
    """--database-url, --keep and --smoke; --broker-url (a Redis URL, flushed) when the bench uses one."""
    parser.add_argument(
        "--database-url",
        default=database_url,
        help="PostgreSQL database to drop, create and use; its name must contain 'bench' "
        f"(default {database_url or 'none'})",
    )
    if broker_url is not None:
        parser.add_argument("--broker-url", default=broker_url, help="a Redis URL; its database is flushed")
    parser.add_argument("--keep", action="store_true", help="leave the bench database in place")
    parser.add_argument(
        "--smoke", action="store_true", help="a small size that runs in seconds: checks the bench works, not targets"
    )


def bench_environment(db: Database, work: Path, *, broker_url: str = "", **extra: str) -> None:
    """The environment of this process (and of the children it starts with it) before Django's
    settings load: the bench database, a throw-away var and media folder, quiet logs, no eager tasks."""
    os.environ.update(
        {
            "DATABASE_URL": db.url,
            "DJANGO_SETTINGS_MODULE": "annotator.settings",
            "ANNOTATOR_VAR_DIR": str(work / "var"),
            "ANNOTATOR_MEDIA_ROOT": str(work / "media"),
            "DJANGO_DEBUG": "0",
            "LOG_LEVEL": "WARNING",
            **extra,
        }
    )
    if broker_url:
        os.environ["CELERY_BROKER_URL"] = broker_url
    os.environ.pop("CELERY_TASK_ALWAYS_EAGER", None)


def migrate() -> float:
    """Set Django up and migrate the bench database; returns the seconds it took."""
    setup_django()
    from django.core.management import call_command
    from django.db import connections

    started = time.perf_counter()
    call_command("migrate", verbosity=0)
    connections.close_all()
    return time.perf_counter() - started


def close_database(db: Database, *, keep: bool, lock: Any = None) -> None:
    """The end of a run, however it ends: Django's connections closed (if Django was set up), the
    bench database dropped unless kept, the run's advisory locks released."""
    try:
        from django.db import connections

        connections.close_all()
    except Exception:  # noqa: S110 - Django may not have been set up
        pass
    if not keep:
        db.drop()
    if lock is not None:
        lock.close()


CHILD_FLAG = "--_child"


def run_in_child(script: str, work: Path, label: str, spec: dict[str, Any], env: dict[str, str] | None = None) -> Any:
    """Run `script` again as ``script --_child SPEC`` (a fresh process, its memory its own): the spec
    as a JSON file whose ``result`` names the file the child writes its answer to, returned decoded."""
    spec_path = work / f"{label}.spec.json"
    result_path = work / f"{label}.result.json"
    spec_path.write_text(json.dumps({**spec, "result": str(result_path)}))
    subprocess.run(
        [sys.executable, str(Path(script).resolve()), CHILD_FLAG, str(spec_path)], env=env, cwd=ROOT, check=True
    )
    return json.loads(result_path.read_text())
