"""python manage.py adjudicate --project P list [--state pending|settled|all] | show SAMPLE |
choose SAMPLE --turn N --revision R --user U [--decision D] [--critique-file F] [--refinement-file F]
[--score criterion=N ...] [--reason TEXT]

Adjudication from the command line, through the same services as the pages and the API. SAMPLE is
the sample's external id (or its number); N the turn's index as shown (1 for the first turn); R the
revision id ``show`` lists; U an adjudicator or admin of the project. Any of --decision,
--critique-file, --refinement-file, --score, --reason makes the final an edit of that version.
"""

from __future__ import annotations

from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from feedback.errors import InvalidInput, NotAllowed, NotFound, ServiceError
from feedback.models import Sample, Turn
from feedback.permissions import roles_in
from feedback.review import adjudication_selectors as selectors
from feedback.review.adjudication import ADJUDICATORS, adjudication_save, case_for
from feedback.review.models import Decision
from feedback.selectors import project_by_key

FILE_MAX_BYTES = 1_000_000


def read_text(option: str, name: str) -> str:
    path = Path(name)
    if not path.is_file():
        raise CommandError(f"{option}: no file {name}")
    with path.open("rb") as handle:
        data = handle.read(FILE_MAX_BYTES + 1)
    if len(data) > FILE_MAX_BYTES:
        raise CommandError(f"{option}: larger than {FILE_MAX_BYTES:,} bytes")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CommandError(f"{option}: not UTF-8 ({exc.reason} at byte {exc.start})") from None


class Command(BaseCommand):
    help = "List the samples whose reviews disagree, show one side by side, and settle a turn."

    def add_arguments(self, parser):
        parser.add_argument("--project", required=True, help="Project slug, name or id.")
        actions = parser.add_subparsers(dest="action", required=True)
        listing = actions.add_parser("list", help="Samples waiting for adjudication (or settled).")
        listing.add_argument("--state", choices=selectors.QUEUE_STATES, default="pending")
        show = actions.add_parser("show", help="A sample's reviews, turn by turn.")
        show.add_argument("sample")
        choose = actions.add_parser("choose", help="Keep one reviewer's version of a turn, or an edit of it.")
        choose.add_argument("sample")
        choose.add_argument("--turn", type=int, required=True, help="The turn, 1 for the first.")
        choose.add_argument("--revision", type=int, required=True, help="The revision id (see show).")
        choose.add_argument("--user", required=True, help="The adjudicator's user name.")
        choose.add_argument("--decision", choices=Decision.values)
        choose.add_argument("--critique-file")
        choose.add_argument("--refinement-file")
        choose.add_argument("--score", action="append", default=[], help="criterion=N; repeatable.")
        choose.add_argument("--reason")

    def handle(self, *args, **opts):
        try:
            project = project_by_key(opts["project"])
            getattr(self, "_" + opts["action"])(project, opts)
        except ServiceError as exc:
            raise CommandError(str(exc)) from None

    def _sample(self, project, key: str) -> Sample:
        sample = Sample.objects.filter(project=project, external_id=key).first()
        if sample is None and key.isascii() and key.isdigit() and len(key) <= 18:
            sample = Sample.objects.filter(project=project, pk=int(key)).first()
        if sample is None:
            raise InvalidInput("sample", f"no sample {key[:100]!r} in this project")
        return sample

    def _list(self, project, opts):
        counts = selectors.queue_counts(project)
        self.stdout.write(f"{counts['pending']} waiting, {counts['settled']} settled")
        for case in selectors.adjudication_queue(project, state=opts["state"]):
            reasons = "; ".join(dict.fromkeys(r for rs in case.turns.values() for r in rs))
            settled = f"settled {case.settled_at:%Y-%m-%d %H:%M}" if case.settled_at else "waiting"
            self.stdout.write(
                f"{case.sample.external_id}  {case.adjudicated}/{len(case.turns)} turns  {settled}  {reasons}"
            )

    def _show(self, project, opts):
        sample = self._sample(project, opts["sample"])
        page = selectors.adjudication_page(project, case_for(project, sample.pk))
        self.stdout.write(f"{sample.external_id}: {'settled' if page.settled else 'waiting'}")
        for t in page.turns:
            head = f"turn {t.turn.index + 1}"
            if t.reasons:
                head += " disagrees: " + "; ".join(t.reasons)
            self.stdout.write(head)
            for v in t.reviews:
                r = v.revision
                scores = ", ".join(f"{name} {value}" for name, value in v.scores)
                chosen = " (kept)" if t.adjudication and t.adjudication.revision_id == r.pk else ""
                self.stdout.write(f"  revision {r.pk} by {r.author}: {r.decision}; {scores}{chosen}")
                self.stdout.write(f"    critique: {r.critique}")
                if r.reason:
                    self.stdout.write(f"    reason: {r.reason}")
            if t.adjudication:
                a = t.adjudication
                self.stdout.write(f"  final by {a.adjudicator}: {a.decision}{' (edited)' if a.edited else ''}")

    def _choose(self, project, opts):
        sample = self._sample(project, opts["sample"])
        user = get_user_model().objects.filter(username=opts["user"]).first()
        if user is None:
            raise InvalidInput("user", f"no user {opts['user'][:100]!r}")
        held = roles_in(user, project)
        if not held:
            raise NotFound(f"user: {user} is not a member of this project")
        if not held.intersection(ADJUDICATORS):
            raise NotAllowed(f"user: {user} is neither an adjudicator nor an admin of this project")
        turn = Turn.objects.filter(sample=sample, index=opts["turn"] - 1).first()
        if turn is None:
            raise InvalidInput("turn", f"the sample has no turn {opts['turn']}")
        edit = {}
        if opts["decision"]:
            edit["decision"] = opts["decision"]
        if opts["critique_file"]:
            edit["critique"] = read_text("--critique-file", opts["critique_file"])
        if opts["refinement_file"]:
            edit["refinement"] = read_text("--refinement-file", opts["refinement_file"])
        if opts["reason"] is not None:
            edit["reason"] = opts["reason"]
        if opts["score"]:
            scores = {}
            for item in opts["score"]:
                name, sep, value = item.partition("=")
                if not sep:
                    raise InvalidInput("score", f"criterion=N, not {item[:100]!r}")
                scores[name] = value
            edit["scores"] = scores
        adjudication = adjudication_save(
            project=project, sample=sample, turn=turn, adjudicator=user, revision_id=opts["revision"], edit=edit
        )
        how = "an edit of" if adjudication.edited else "as it was:"
        self.stdout.write(
            f"turn {opts['turn']} of {sample.external_id} settled, {adjudication.decision}: "
            f"{how} revision {adjudication.revision_id}"
        )
