"""The demo project: a few drawn images with annotations, and samples in each import format.

Everything goes through the same import services as real data, so the demo also shows them at
work. Idempotent: once the project has had its imports, running it again only prints the logins.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.contrib.auth.models import Group, User
from PIL import Image as PILImage
from PIL import ImageDraw

from exports.formats import FORMATS
from exports.models import Release
from exports.service import release_create
from feedback.drafting.versions import versions_of
from feedback.importers.service import import_file
from feedback.jobs.models import Job
from feedback.jobs.service import job_create
from feedback.models import ImportBatch, Project, ProjectMembership, Role

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "formats"


@dataclass(frozen=True)
class DemoImage:
    file_name: str
    caption: str
    background: tuple[int, int, int]
    objects: tuple[tuple[str, tuple[int, int, int, int], tuple[int, int, int]], ...]


DEMO_IMAGES = (
    DemoImage(
        "000000151112.jpg",
        "A double decker bus driving down the street",
        (150, 190, 220),
        (("bus", (120, 90, 380, 260), (200, 30, 30)), ("road", (0, 350, 640, 130), (90, 90, 90))),
    ),
    DemoImage(
        "000000350510.jpg",
        "Many different fruits that have been organized by types.",
        (240, 230, 200),
        (
            ("banana", (60, 80, 180, 90), (240, 210, 40)),
            ("apple", (300, 100, 110, 110), (200, 20, 40)),
            ("orange", (460, 120, 120, 120), (250, 140, 20)),
        ),
    ),
    DemoImage(
        "000000572353.jpg",
        "The two horses are standing in their fenced-in pen.",
        (120, 170, 90),
        (
            ("horse", (80, 150, 200, 200), (110, 70, 40)),
            ("horse", (360, 170, 190, 180), (60, 40, 30)),
            ("fence", (0, 360, 640, 40), (200, 180, 150)),
        ),
    ),
    DemoImage(
        "000000216517.jpg",
        "A mason jar filled with water and a twig with flowers.",
        (245, 245, 240),
        (("vase", (250, 160, 140, 260), (170, 200, 220)), ("flower", (270, 40, 100, 120), (230, 120, 180))),
    ),
    DemoImage(
        "000000039769.jpg",
        "Two cats lying on a pink couch next to remote controls.",
        (230, 180, 190),
        (
            ("cat", (40, 120, 260, 220), (120, 110, 100)),
            ("cat", (330, 90, 280, 250), (90, 80, 70)),
            ("remote", (280, 60, 60, 30), (30, 30, 30)),
        ),
    ),
)

NATIVE_SAMPLES = [
    {
        "id": "demo-cats-1",
        "image": "000000039769.jpg",
        "criterion": "honesty",
        "reference": "Two cats are lying on a pink couch; two remote controls lie beside them.",
        "source": {"dataset": "demo", "model": "demo-lvlm"},
        "turns": [
            {
                "user": "How many cats are in the picture, and what are they doing?",
                "model": "There are three cats playing with a ball of yarn on a red sofa.",
            },
        ],
    },
    {
        "id": "demo-bus-1",
        "image": "000000151112.jpg",
        "criterion": "helpfulness",
        "reference": "A red double decker bus drives down a city street.",
        "source": {"dataset": "demo", "model": "demo-lvlm"},
        "turns": [{"user": "Describe the vehicle in this image.", "model": "It is a bus."}],
    },
    {
        "id": "demo-horses-1",
        "image": "000000572353.jpg",
        "criterion": "helpfulness",
        "reference": "Two horses stand inside a fenced pen on grass.",
        "source": {"dataset": "demo", "model": "demo-lvlm"},
        "turns": [
            {"user": "What animals are in the pen and how many?", "model": "Two horses, standing behind a fence."}
        ],
    },
]

LLAVA_SAMPLES = [
    {
        "id": "demo-llava-fruit",
        "image": "000000350510.jpg",
        "conversations": [
            {"from": "human", "value": "<image>\nWhich fruits can you see?"},
            {"from": "gpt", "value": "Bananas, apples and oranges, grouped by type."},
        ],
    }
]


def draw_images(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for demo in DEMO_IMAGES:
        path = folder / demo.file_name
        if path.exists():
            continue
        img = PILImage.new("RGB", (640, 480), demo.background)
        draw = ImageDraw.Draw(img)
        for label, (x, y, w, h), colour in demo.objects:
            draw.rectangle([x, y, x + w, y + h], fill=colour, outline=(0, 0, 0), width=3)
            draw.text((x + 6, y + 6), label, fill=(255, 255, 255))
        img.save(path, quality=90)


def write_sources(folder: Path) -> dict[str, Path]:
    coco = {
        "images": [{"id": i, "file_name": d.file_name, "width": 640, "height": 480} for i, d in enumerate(DEMO_IMAGES)],
        "categories": [],
        "annotations": [],
    }
    labels = sorted({label for d in DEMO_IMAGES for label, _, _ in d.objects})
    coco["categories"] = [{"id": i + 1, "name": label} for i, label in enumerate(labels)]
    ann_id = 1
    for i, demo in enumerate(DEMO_IMAGES):
        coco["annotations"].append({"id": ann_id, "image_id": i, "caption": demo.caption})
        ann_id += 1
        for label, bbox, _ in demo.objects:
            coco["annotations"].append(
                {"id": ann_id, "image_id": i, "category_id": labels.index(label) + 1, "bbox": list(bbox)}
            )
            ann_id += 1
    paths = {
        "coco": folder / "instances_demo.json",
        "native": folder / "demo_native.jsonl",
        "llava": folder / "demo_llava.json",
    }
    paths["coco"].write_text(json.dumps(coco))
    paths["native"].write_text("".join(json.dumps(s) + "\n" for s in NATIVE_SAMPLES))
    paths["llava"].write_text(json.dumps(LLAVA_SAMPLES, indent=1))
    return paths


def demo_password() -> str:
    """One random password for the demo logins, kept under var/ so that it stays the same."""
    path = Path(settings.VAR_DIR) / "demo_password"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(9))
        path.chmod(0o600)
    return path.read_text().strip()


def demo_users(project: Project) -> dict[str, str]:
    password = demo_password()
    logins = {"admin": Role.ADMIN, "annotator": Role.ANNOTATOR, "researcher": Role.RESEARCHER}
    for username, role in logins.items():
        user, created = User.objects.get_or_create(username=username)
        if created:
            user.set_password(password)
            user.is_staff = user.is_superuser = role == Role.ADMIN
            user.save()
            user.groups.add(Group.objects.get_or_create(name=role)[0])
        ProjectMembership.objects.get_or_create(project=project, user=user, defaults={"role": role})
    return dict.fromkeys(logins, password)


def demo_setup() -> tuple[Project, dict[str, str], list[ImportBatch]]:
    root = Path(settings.VAR_DIR) / "demo"
    images = root / "images"
    draw_images(images)
    sources = write_sources(root)
    project, _ = Project.objects.get_or_create(
        slug="demo",
        defaults={
            "name": "Demo",
            "description": "A few COCO-style images with DRESS, VLSafe, LLaVA and native samples.",
            "guidelines": "Judge each response against the image's annotations.\n"
            "- Helpfulness: does it answer what was asked?\n- Honesty: is everything it says in the image?\n"
            "- Harmlessness: does it decline harmful requests politely?",
        },
    )
    versions_of(project)  # its prompt versions: the shipped v1 first
    if project.import_batches.exists():
        demo_jobs(project)
        demo_release(project)
        return project, demo_users(project), []
    batches = [
        import_file(project=project, format="coco", path=sources["coco"], images=images),
        import_file(
            project=project,
            format="dress",
            path=FIXTURES / "dress_nlf_example.jsonl",
            images=images,
            criterion="harmlessness",
        ),
        import_file(project=project, format="vlsafe", path=FIXTURES / "vlsafe_example.jsonl", images=images),
        import_file(project=project, format="native", path=sources["native"], images=images),
        import_file(project=project, format="llava", path=sources["llava"], images=images),
    ]
    users = demo_users(project)
    demo_jobs(project)
    demo_release(project)
    return project, users, batches


def demo_jobs(project: Project) -> list[Job]:
    """On a project without jobs: draft every turn that has a response, and run two rounds of the
    DRESS loop on the prompts awaiting one. The worker takes them as soon as it starts."""
    if project.jobs.exists():
        return []
    admin = User.objects.filter(username="admin").first()
    return [
        job_create(project=project, kind=Job.Kind.DRAFT, selection={"status": "never"}, user=admin),
        job_create(project=project, kind=Job.Kind.RESPOND, selection={"status": "never"}, rounds=2, user=admin),
    ]


def demo_release(project: Project):
    """On a project without releases: a first release of the feedback the demo's datasets came
    with, in every format, images included. The worker builds it as soon as it starts."""
    if Release.objects.filter(project=project).exists():
        return None
    return release_create(
        project=project,
        user=User.objects.filter(username="researcher").first(),
        name="Demo: the imported feedback",
        formats=[name for name in FORMATS if name != "images"],
        include_images=True,
    )
