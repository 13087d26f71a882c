"""What a failed POST means for PostRecords: :func:`classify` maps an exception to a :class:`Failure`.

The kinds differ in whom they concern:

* ``REVOKED`` — 403: the key was revoked; no further Monetate call (the batch fails whole);
* ``STOP`` — Monetate refuses *us*, not a payload: 429 after the client's retries (throttling is
  never a reason to split a batch: more POSTs only add to it), a 401 a fresh token did not cure, a
  configuration error, or the invocation's time running out. Posting stops; what was not posted is
  retried;
* ``UNAVAILABLE`` — 5xx, timeouts, connection errors, a proxy's page, after the client's retries:
  either Monetate is down or this payload makes it fail; PostRecords finds out which
  (:mod:`monetate_ingest.records.isolation`);
* ``SCHEMA_GONE`` — 404 on the POST: the schema was removed; it is re-read once;
* ``REFUSED`` — any other 4xx (413, 405, 409, 415, 422 …): Monetate will not take this payload;
  the messages whose own rows it refuses are dead-lettered with its answer;
* ``BUG`` — anything else: an error in this code. The payload's messages are retried (and logged
  with the exception type); nothing else is affected.
"""

from __future__ import annotations

from enum import Enum

from monetate_ingest.errors import ConfigurationError
from monetate_ingest.monetate import exceptions as api

#: ``error_type`` of a message whose POST Monetate refused with a status other than 400 and 404.
POST_REFUSED = "post_refused"


class Failure(Enum):
    REVOKED = "revoked"
    STOP = "stop"
    UNAVAILABLE = "unavailable"
    SCHEMA_GONE = "schema_gone"
    REFUSED = "refused"
    BUG = "bug"


def classify(exc: BaseException, *, out_of_time: bool = False) -> Failure:
    """The kind of ``exc`` (raised by a POST); ``out_of_time``: the POSTs' deadline has passed, so a
    transient failure says nothing about Monetate."""
    if isinstance(exc, api.KeyRevokedError):
        return Failure.REVOKED
    if isinstance(exc, (api.RateLimitedError, api.DeadlineExceededError)):
        return Failure.STOP
    if isinstance(exc, api.TransientApiError):
        return Failure.STOP if out_of_time else Failure.UNAVAILABLE
    if isinstance(exc, api.NotFoundError):
        return Failure.SCHEMA_GONE
    if isinstance(exc, (api.AuthenticationError, ConfigurationError)):
        return Failure.STOP
    if isinstance(exc, api.MonetateApiError):
        return Failure.REFUSED
    return Failure.BUG


def stop_reason(exc: BaseException, *, out_of_time: bool) -> str:
    """Why posting stopped, as the log and the retried messages say it."""
    from monetate_ingest.records.state import describe_error

    if isinstance(exc, api.RateLimitedError):
        return f"Monetate kept throttling (429) after the client's retries: {describe_error(exc)}"
    if out_of_time or isinstance(exc, api.DeadlineExceededError):
        return f"the invocation's time ran out before these rows were posted: {describe_error(exc)}"
    return f"Monetate refused this function's requests: {describe_error(exc)}"
