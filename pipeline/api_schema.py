"""The API's errors in its OpenAPI schema (every error is JSON with a
`detail`, plus field errors for a 400).

drf-spectacular documents only the success of each operation; a client generated from the
schema, or a fuzzer checking answers against it, would then read every refusal as a
broken server. This hook, run after drf-spectacular's own, adds the refusals each
operation can give, inferred from what it takes: every operation wants a user with the
pipeline's permissions (401, 403); one that reads input can refuse it (400); one that names
an object or a page can miss (404); every POST drives a task, which its stage can refuse
(409).

It also says what every text input refuses: DRF's CharField answers a NUL with a 400
(PostgreSQL could not store it), which a schema without a pattern calls valid input.
"""

ERROR_SCHEMA = {
    "type": "object",
    "description": "Why the request was refused; a 400 also names each bad field, with "
    "its messages.",
    "properties": {"detail": {"type": "string"}},
    "additionalProperties": {"type": "array", "items": {"type": "string"}},
    "required": ["detail"],
}

MEANINGS = {
    400: "The request's input is invalid: `detail` sums it up, each bad field its messages.",
    401: "No token, or one that is unknown or of a deactivated user.",
    403: "The account lacks the pipeline permission this needs.",
    404: "No such task, deploy action or page.",
    409: "The task's stage or deploy phase does not allow this; `detail` says why.",
}


NO_NUL = "^[^\\u0000]*$"


def document_errors(result: dict, **kwargs) -> dict:
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    schemas["Error"] = ERROR_SCHEMA
    error = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    for operations in result.get("paths", {}).values():
        for method, operation in operations.items():
            for parameter in operation.get("parameters", []):
                if parameter["in"] == "query":
                    refuse_nul(parameter["schema"])
            for content in operation.get("requestBody", {}).get("content", {}).values():
                body = schemas[content["schema"]["$ref"].rsplit("/", 1)[-1]]
                for field in body.get("properties", {}).values():
                    refuse_nul(field)
            responses = operation["responses"]
            for code in refusals(method, operation):
                responses.setdefault(str(code), {"description": MEANINGS[code], "content": error})
            operation["responses"] = dict(sorted(responses.items()))
    return result


def refusals(method: str, operation: dict) -> list[int]:
    params = {(p["in"], p["name"]) for p in operation.get("parameters", [])}
    codes = [401, 403]
    if "requestBody" in operation or any(
        where == "query" and name != "page" for where, name in params
    ):
        codes.append(400)
    if any(where == "path" for where, _ in params) or ("query", "page") in params:
        codes.append(404)
    if method == "post":
        codes.append(409)
    return codes


def refuse_nul(schema: dict) -> None:
    """Free text gets the pattern; a format, choice or pattern of its own already excludes NUL."""
    if schema.get("type") == "string" and not {"format", "enum", "pattern"} & set(schema):
        schema["pattern"] = NO_NUL
