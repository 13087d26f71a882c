"""What the caller asked for, checked before anything is paced or sent: the schema name and the id,
the method; and what a lookup found."""

from __future__ import annotations

import re

from monetate_ingest.monetate.exceptions import InvalidSchemaNameError
from monetate_ingest.monetate.names import check_schema_name

MAX_RECORD_ID = 256
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
#: ``/records/{schema}/{id}`` as API Gateway passes the path (the id may hold ``/``).
RECORDS_PATH = re.compile(r"/records/([^/]*)/(.*)", re.DOTALL)
#: The API's resources and the one method each answers.
ALLOWED_METHODS = "GET"


class InvalidRequest(Exception):
    """The caller's schema name or id is malformed (400)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class MethodNotAllowed(Exception):
    """A method other than GET on one of the API's resources (405 with ``Allow``)."""

    def __init__(self, method: str, path: str) -> None:
        super().__init__(f"{method} is not allowed on {path}")
        self.method = method
        self.path = path


class NoSuchRecord(Exception):
    """Monetate answered the lookup with no row (an empty ``schema_rows``): 404 like its own 404."""


def validate_schema_name(schema: str) -> str:
    """The one schema-name rule (:func:`monetate_ingest.monetate.names.check_schema_name`), as a 400."""
    try:
        return check_schema_name(schema)
    except InvalidSchemaNameError as exc:
        raise InvalidRequest("invalid_schema_name", str(exc)) from None


def validate_record_id(record_id: str) -> str:
    if not record_id:
        raise InvalidRequest("invalid_id", "the record id is empty")
    if len(record_id) > MAX_RECORD_ID:
        raise InvalidRequest("invalid_id", f"the record id is longer than {MAX_RECORD_ID} characters")
    if _CONTROL.search(record_id):
        raise InvalidRequest("invalid_id", "the record id contains control characters")
    return record_id


def is_known_path(path: str) -> bool:
    """True for the API's resources: the page (``/``) and ``/records/{schema}/{id}``."""
    return path == "/" or RECORDS_PATH.fullmatch(path) is not None
