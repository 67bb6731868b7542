"""COCO annotation files (``captions_*.json``, ``instances_*.json``): captions and boxes for images.

Annotations attach to the project's images by file name. Images the project does not know yet
are registered (with COCO's width and height) so that samples imported later find their
annotations; their files can arrive later too. Boxes keep COCO's ``[x, y, w, h]`` pixels and take
their category's name as label.

The document is streamed, never loaded (``instances_train2017.json`` is 448 MB): one pass reads
the categories, one the images, one the annotations, as COCO does not fix the order of its keys.
Annotations are set aside in a temporary SQLite file by image, then each image is yielded with its
own, de-duplicated through a set; memory stays flat whatever the size of the file.
"""

from __future__ import annotations

import re
import sqlite3
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

import ijson

from ..limits import JSON_MAX_DEPTH
from .reader import SourceError
from .records import (
    ImageRecord,
    RecordError,
    check_text,
    expect_object,
    get_optional_int,
    get_str,
    image_file_name,
    parse_bbox,
)

CocoItem = tuple[str, ImageRecord | RecordError]
NOT_COCO = 'not a COCO annotation file: expected an object with an "images" array'
CAPTION, BOX = 0, 1
# (image's place in the file, kind, caption or label, x, y, w, h): boxes keep ints as ints.
AnnotationRow = tuple[int, int, str, Any, Any, Any, Any]
SPILL_BATCH = 10_000


# --------------------------------------------------------------------------------------------
# The stream ijson reads


class GuardedStream:
    """A JSON file as ijson reads it, checked on the way.

    - Nesting depth (``check_depth``), counted before ijson sees the bytes: ijson's memory grows
      with the square of the depth, so ``[`` repeated 100,000 times would take gigabytes.
    - ``NaN`` and ``Infinity``, which Python's JSON reader accepts and ijson refuses, become marker
      strings that :func:`restore_nonfinite` turns back into floats, so that the record holding one
      is rejected alone, naming its field, as the other formats do.

    Bytes are passed on up to a closing bracket outside any string, so that neither a string nor
    a token is ever cut in two; strings are removed before brackets are counted.
    """

    BLOCK = 1 << 16
    MAX_PENDING = 4 * 1024 * 1024
    STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')
    NONFINITE = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"|-?Infinity|NaN')
    NOT_BRACKETS = bytes(sorted(set(range(256)) - set(b"[]{}")))
    MARK = "\x00nonfinite:"

    def __init__(self, stream: BinaryIO, *, check_depth: bool = True, limit: int = JSON_MAX_DEPTH) -> None:
        self.stream = stream
        self.check_depth = check_depth
        self.limit = limit
        self.depth = 0
        self.pending = b""
        self.consumed = 0
        self.eof = False
        self.nonfinite = False

    def read(self, size: int = -1) -> bytes:
        if size == 0:
            return b""
        while True:
            if self.eof:
                out, self.pending = self.pending, b""
                self.count(self.STRING.sub(b"", out).split(b'"', 1)[0])
                return self.fix(out)
            block = self.stream.read(max(size, self.BLOCK))
            if not block:
                self.eof = True
                continue
            self.pending += block
            cut = self.cut()
            if cut:
                out, self.pending = self.pending[:cut], self.pending[cut:]
                return self.fix(out)
            if len(self.pending) > self.MAX_PENDING:
                raise SourceError(
                    f"no bracket outside a string for {self.MAX_PENDING:,} bytes after byte {self.consumed:,}; "
                    "not a COCO annotation file"
                )

    def cut(self) -> int:
        """The end of the last closing bracket outside a string in the pending bytes (0: none yet),
        its brackets counted. The pending bytes always start outside any string."""
        end = len(self.pending)
        for _ in range(4):
            at = max(self.pending.rfind(b"]", 0, end), self.pending.rfind(b"}", 0, end))
            if at < 0:
                return 0
            outside = self.STRING.sub(b"", self.pending[: at + 1])
            if b'"' not in outside:  # no string left open: the bracket is outside them all
                self.count(outside)
                return at + 1
            end = at
        return 0

    def count(self, outside: bytes) -> None:
        if not self.check_depth:
            return
        depth = self.depth
        for byte in outside.translate(None, self.NOT_BRACKETS):
            if byte in b"[{":
                depth += 1
                if depth > self.limit:
                    raise SourceError(f"nested deeper than {self.limit} levels of arrays and objects")
            else:
                depth -= 1
        self.depth = depth

    def fix(self, out: bytes) -> bytes:
        self.consumed += len(out)
        if b"NaN" in out or b"Infinity" in out:
            out = self.NONFINITE.sub(self._mark, out)
        return out

    def _mark(self, match: re.Match[bytes]) -> bytes:
        token = match.group()
        if token[0] == 0x22:
            return token
        self.nonfinite = True
        return b'"\\u0000nonfinite:' + token + b'"'


def restore_nonfinite(value: Any) -> Any:
    """The value with GuardedStream's markers turned back into NaN and infinities."""
    if isinstance(value, str):
        if value.startswith(GuardedStream.MARK):
            return float(value[len(GuardedStream.MARK) :])
        return value
    if isinstance(value, list):
        return [restore_nonfinite(v) for v in value]
    if isinstance(value, dict):
        return {k: restore_nonfinite(v) for k, v in value.items()}
    return value


class Document:
    """A COCO file, read again for each of its parts. The first pass checks the nesting depth of
    the whole file; later passes are guarded only when it found a NaN or an infinity."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.start = self._first_byte()
        self.checked = False
        self.nonfinite = False

    def _first_byte(self) -> int | None:
        """Where the JSON starts (after a byte order mark), or None when the file holds nothing."""
        with self.path.open("rb") as f:
            start = 3 if f.read(3) == b"\xef\xbb\xbf" else 0
            f.seek(start)
            while block := f.read(1 << 16):
                if block.strip():
                    return start
        return None

    def items(self, prefix: str) -> Iterator[Any]:
        """The items under ``prefix`` (``"images.item"``), one at a time."""
        with self.path.open("rb") as f:
            f.seek(self.start or 0)
            guard = GuardedStream(f, check_depth=not self.checked) if not self.checked or self.nonfinite else None
            try:
                for item in ijson.items(guard or f, prefix, use_float=True):
                    yield restore_nonfinite(item) if guard and guard.nonfinite else item
            except ijson.JSONError as exc:
                near = guard.consumed if guard else f.tell()
                raise SourceError(f"invalid JSON near byte {near:,}: {str(exc).splitlines()[0]}") from None
            if guard and not self.checked:
                self.checked, self.nonfinite = True, guard.nonfinite

    def check_shape(self) -> None:
        """A file without images: is it a COCO file at all? (Only read when it has no images.)"""
        with self.path.open("rb") as f:
            f.seek(self.start or 0)
            stream = GuardedStream(f)
            try:
                events = ijson.parse(stream, use_float=True)
                first = next(events, None)
                if first is None or first[1] != "start_map":
                    raise SourceError(NOT_COCO)
                for prefix, event, _ in events:
                    if prefix == "images" and event in ("start_array", "start_map", "string", "number", "null"):
                        if event == "start_array":
                            return
                        raise SourceError(NOT_COCO)
            except ijson.JSONError as exc:
                raise SourceError(f"invalid JSON near byte {stream.consumed:,}: {str(exc).splitlines()[0]}") from None
        raise SourceError(NOT_COCO)


# --------------------------------------------------------------------------------------------
# Reading


def read(path: Path) -> Iterator[CocoItem]:
    """Yields (where, image record or error); one image record per image of the file, in file order."""
    document = Document(path)
    if document.start is None:
        return
    categories: dict[Any, str] = {}
    for i, entry in enumerate(document.items("categories.item")):
        where = f"categories[{i}]"
        try:
            obj = expect_object(entry, where)
            categories[_key(obj.get("id"), f"{where}.id")] = get_str(obj, "name", where)
        except RecordError as exc:
            yield where, exc
    with tempfile.TemporaryDirectory(prefix="coco-") as folder:
        spill = Spill(Path(folder) / "annotations.sqlite3")
        try:
            ids: dict[Any, int] = {}
            yield from spill.images(document, ids)
            if not ids:
                document.check_shape()
            yield from spill.annotations(document, ids, categories)
            yield from spill.records()
        finally:
            spill.close()


def _key(value: Any, where: str) -> int | str:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise RecordError(where, "expected an integer or a string")
    return value


class Spill:
    """Images and their annotations set aside on disk, read back image by image."""

    def __init__(self, path: Path) -> None:
        self.db = sqlite3.connect(path)
        self.db.executescript(
            """
            PRAGMA journal_mode = OFF;
            PRAGMA synchronous = OFF;
            CREATE TABLE image (seq INTEGER PRIMARY KEY, file_name TEXT, width INTEGER, height INTEGER);
            CREATE TABLE annotation (image_seq INTEGER, kind INTEGER, value TEXT, x, y, w, h);
            """
        )

    def close(self) -> None:
        self.db.close()

    def images(self, document: Document, ids: dict[Any, int]) -> Iterator[CocoItem]:
        rows: list[tuple[int, str, int | None, int | None]] = []
        for i, entry in enumerate(document.items("images.item")):
            where = f"images[{i}]"
            try:
                obj = expect_object(entry, where)
                if "id" not in obj:
                    raise RecordError(f"{where}.id", "is required")
                key = _key(obj["id"], f"{where}.id")
                if key in ids:
                    raise RecordError(f"{where}.id", f"image id {key!r} is used twice in this file")
                rows.append(
                    (
                        i,
                        image_file_name(obj.get("file_name"), f"{where}.file_name"),
                        get_optional_int(obj, "width", where),
                        get_optional_int(obj, "height", where),
                    )
                )
                ids[key] = i
            except RecordError as exc:
                yield where, exc
            if len(rows) >= SPILL_BATCH:
                self.db.executemany("INSERT INTO image VALUES (?, ?, ?, ?)", rows)
                rows = []
        self.db.executemany("INSERT INTO image VALUES (?, ?, ?, ?)", rows)

    def annotations(self, document: Document, ids: dict[Any, int], categories: dict[Any, str]) -> Iterator[CocoItem]:
        rows: list[AnnotationRow] = []
        for i, entry in enumerate(document.items("annotations.item")):
            where = f"annotations[{i}]"
            try:
                row = annotation_row(entry, where, ids, categories)
            except RecordError as exc:
                yield where, exc
                continue
            if row is not None:
                rows.append(row)
            if len(rows) >= SPILL_BATCH:
                self.db.executemany("INSERT INTO annotation VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
                rows = []
        self.db.executemany("INSERT INTO annotation VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
        self.db.execute("CREATE INDEX annotation_image ON annotation (image_seq)")
        self.db.commit()

    def records(self) -> Iterator[CocoItem]:
        """Each image with its captions and boxes, in the order of the file; duplicates dropped."""
        annotations = self.db.execute("SELECT * FROM annotation ORDER BY image_seq, rowid")
        pending = next(annotations, None)
        for seq, file_name, width, height in self.db.execute("SELECT * FROM image ORDER BY seq"):
            record = ImageRecord(file_name=file_name, width=width, height=height)
            seen: set[tuple] = set()
            while pending is not None and pending[0] <= seq:
                key = pending[1:]
                if pending[0] == seq and key not in seen:
                    seen.add(key)
                    kind, value, *bbox = key
                    if kind == CAPTION:
                        record.captions.append(value)
                    else:
                        record.objects.append({"label": value, "bbox": bbox})
                pending = next(annotations, None)
            yield f"images[{seq}]", record


def annotation_row(entry: Any, where: str, ids: dict[Any, int], categories: dict[Any, str]) -> AnnotationRow | None:
    """(image, kind, caption or label, x, y, w, h) for one annotation; None for an empty caption."""
    obj = expect_object(entry, where)
    image_id = obj.get("image_id")
    seq = ids.get(image_id) if isinstance(image_id, int | str) and not isinstance(image_id, bool) else None
    if seq is None:
        raise RecordError(f"{where}.image_id", f"no image with id {image_id!r} in this file")
    if "caption" in obj:
        caption = check_text(get_str(obj, "caption", where, allow_empty=True).strip(), "caption", f"{where}.caption")
        return (seq, CAPTION, caption, None, None, None, None) if caption else None
    if "bbox" in obj:
        bbox = parse_bbox(obj["bbox"], f"{where}.bbox")
        category = obj.get("category_id")
        label = categories.get(category) if isinstance(category, int | str) and not isinstance(category, bool) else None
        if label is None:
            raise RecordError(f"{where}.category_id", f"no category with id {category!r}")
        x, y, w, h = bbox
        return seq, BOX, label, x, y, w, h
    raise RecordError(where, "neither a caption nor a bbox")
