"""The export formats, one module each; ``FORMATS`` by name, in the order pages list them."""

from __future__ import annotations

from . import dress, images, llava, parquet, preference, rich, vlsafe
from .base import ExportFormat

FORMATS: dict[str, ExportFormat] = {
    module.FORMAT.name: module.FORMAT for module in (dress, vlsafe, rich, llava, preference, parquet, images)
}
