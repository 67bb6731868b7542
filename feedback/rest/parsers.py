"""The API's JSON parser: DRF's, with the nesting bound checked before parsing.

Python's ``json`` recurses once per level, so a few kilobytes of ``[[[[…`` end in a
``RecursionError`` (a 500). This parser measures the depth first and answers 400. The body's size
is bounded before it gets here, by ``annotator.middleware.RequestBodyLimitMiddleware``.
"""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser
from rest_framework.utils.json import strict_constant

from feedback.limits import JSON_MAX_DEPTH, json_depth


class BoundedJSONParser(JSONParser):
    def parse(self, stream, media_type=None, parser_context=None) -> Any:
        parser_context = parser_context or {}
        encoding = parser_context.get("encoding", settings.DEFAULT_CHARSET)
        raw = stream.read() if stream is not None else b""
        try:
            text = raw.decode(encoding)
        except (UnicodeDecodeError, LookupError) as exc:
            raise ParseError(f"JSON parse error - the body is not valid {encoding}: {exc}") from exc
        if json_depth(text) > JSON_MAX_DEPTH:
            raise ParseError(f"JSON parse error - nested deeper than {JSON_MAX_DEPTH} levels of arrays and objects.")
        try:
            return json.loads(text, parse_constant=strict_constant if self.strict else None)
        except ValueError as exc:
            raise ParseError(f"JSON parse error - {exc}") from exc
