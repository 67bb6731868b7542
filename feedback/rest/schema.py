"""The error answers of every operation, declared in one place: a postprocessing hook of the OpenAPI
document that adds, where the operation can answer it and the view did not say more, each refusal
with the one error body (the ``Error`` component, see :mod:`feedback.rest.errors`).

- 400 for operations that take a body or query parameters (invalid input, malformed JSON);
- 401 and 403 for every authenticated operation (no credentials; not allowed);
- 404 for every operation with path parameters (no such project for this user, or no such object)
  and every paginated list (no such page);
- 405 never (each method is declared), 409 for state-changing operations, 413 for those with a body;
- 429 where a throttle applies (the token endpoint).

Set in ``SPECTACULAR_SETTINGS["POSTPROCESSING_HOOKS"]``."""

from __future__ import annotations

from typing import Any

ERROR_REF = {"$ref": "#/components/schemas/Error"}
DESCRIPTIONS = {
    "400": "Invalid input: `errors` names each field at fault.",
    "401": "No credentials, or credentials that are not valid.",
    "403": "Not allowed for this user's role in the project.",
    "404": "No such project for this user, no such object, or no such page.",
    "409": "The object is not in a state that allows this.",
    "413": "The body is larger than the limit.",
    "429": "Too many requests: retry after the time in `Retry-After`.",
}
UNSAFE = {"post", "put", "patch", "delete"}
WITH_BODY = {"post", "put", "patch"}
THROTTLED_PATHS = ("/api/auth/token/",)


def error_codes(path: str, method: str, operation: dict[str, Any]) -> list[str]:
    parameters = operation.get("parameters", [])
    codes = []
    if method in WITH_BODY or any(p.get("in") == "query" for p in parameters):
        codes.append("400")
    if {} not in operation.get("security", [{}]) and path not in THROTTLED_PATHS:
        codes += ["401", "403"]
    if "{" in path or any(p.get("in") == "path" or p.get("name") == "page" for p in parameters):
        codes.append("404")
    if method in UNSAFE and path not in THROTTLED_PATHS:
        codes.append("409")
    if method in WITH_BODY:
        codes.append("413")
    if path in THROTTLED_PATHS:
        codes.append("429")
    return codes


def declare_errors(result: dict[str, Any], generator, request, public) -> dict[str, Any]:
    for path, item in result.get("paths", {}).items():
        for method, operation in item.items():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            responses = operation["responses"]
            for code in error_codes(path, method, operation):
                responses.setdefault(
                    code, {"content": {"application/json": {"schema": ERROR_REF}}, "description": DESCRIPTIONS[code]}
                )
            operation["responses"] = dict(sorted(responses.items()))
    return result
