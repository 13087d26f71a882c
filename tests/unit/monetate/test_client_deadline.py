"""post_body(..., deadline=): retries never sleep past the deadline, read timeouts shrink to the time
left, and nothing is sent once it has passed. A fake clock that moves only when the code sleeps (or
when the fake server says an answer took time): no real waiting."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from monetate_ingest.monetate.auth import TokenAuth
from monetate_ingest.monetate.client import MonetateClient
from monetate_ingest.monetate.credentials import parse_secret
from monetate_ingest.monetate.exceptions import DeadlineExceededError, TransientApiError
from monetate_ingest.monetate.tokens import TokenProvider
from monetate_ingest.monetate.transport import READ_TIMEOUT_FLOOR
from requests import PreparedRequest
from requests.auth import AuthBase

API = "https://api.example.test"
BASE = f"{API}/api/data/v1/acme/production"
BODY = b'{"schema_rows":[{"id":"1"}]}'
CREATED: Any = (201, {"meta": {"code": 201, "errors": [], "warnings": []}, "data": {}}, {})


def failing(status: int, retry_after: str | None = None) -> Any:
    headers = {"Retry-After": retry_after} if retry_after is not None else {}
    return status, {"meta": {"code": status, "errors": [], "warnings": []}, "data": None}, headers


class Clock:
    """``time.monotonic`` and ``time.sleep`` for the code under test; sleeping moves the clock."""

    def __init__(self) -> None:
        self.now = 5_000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


class StaticAuth(AuthBase):
    def __call__(self, r: PreparedRequest) -> PreparedRequest:
        r.headers["Authorization"] = "Token static"
        return r


class Server:
    """Data API answers from a list, then 201; ``takes`` seconds of the fake clock per answer."""

    def __init__(self, clock: Clock, *replies: Any, takes: float = 0.0) -> None:
        self.clock = clock
        self.replies = list(replies)
        self.takes = takes

    def __call__(self, request: PreparedRequest) -> Any:
        self.clock.now += self.takes
        return self.replies.pop(0) if self.replies else CREATED


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def make(fake_http: Callable[..., Any], clock: Clock) -> Callable[..., Any]:
    """``client, transport = make(*replies, takes=0.0)``: a client on the fake clock."""

    def build(*replies: Any, takes: float = 0.0) -> tuple[MonetateClient, Any]:
        session, transport = fake_http(Server(clock, *replies, takes=takes))
        client = MonetateClient(
            data_api_base=BASE,
            auth=StaticAuth(),
            session=session,
            timeout=(3.05, 30.0),
            sleep=clock.sleep,
            monotonic=clock,
        )
        return client, transport

    return build


# --- the unhappy paths ---------------------------------------------------------------------------


def test_a_retry_that_would_end_past_the_deadline_is_not_slept(
    make: Callable[..., Any], clock: Clock
) -> None:
    # Given Monetate asks to come back in 5 s, and the invocation has 2 s left
    client, transport = make(failing(503, retry_after="5"))
    # When rows are posted with that deadline
    with pytest.raises(DeadlineExceededError) as caught:
        client.post_body("s", BODY, deadline=clock.now + 2.0)
    # Then one POST was sent and nothing slept; the error is transient (the rows are kept) and
    # says how many attempts were made, why it stopped and that the rows wait for the next run
    assert len(transport.sent) == 1 and clock.sleeps == []
    error = caught.value
    assert isinstance(error, TransientApiError) and error.retryable and error.status == 503
    message = str(error)
    assert message.startswith("POST /api/data/v1/acme/production/data/s/: stopped after 1 attempt ")
    assert "would end past it" in message and "HTTP 503" in message
    assert "the rows are left for the next invocation" in message
    assert client.stats == {"requests": 1, "retries": 0, "throttled": 0}


def test_nothing_is_sent_when_no_time_is_left(make: Callable[..., Any], clock: Clock) -> None:
    # Given a deadline that has already come
    client, transport = make()
    # When rows are posted  Then nothing reaches Monetate and the error says 0 attempts were made
    with pytest.raises(DeadlineExceededError, match=r"stopped after 0 attempts .*no time was left"):
        client.post_body("s", BODY, deadline=clock.now)
    assert transport.sent == [] and client.stats["requests"] == 0


def test_time_spent_waiting_for_answers_counts_against_the_deadline(
    make: Callable[..., Any], clock: Clock
) -> None:
    # Given 500s "retry after 1 s" that each take 4 s to arrive, and 10 s left
    client, transport = make(*[failing(500, retry_after="1")] * 5, takes=4.0)
    deadline = clock.now + 10.0
    # When rows are posted
    with pytest.raises(DeadlineExceededError) as caught:
        client.post_body("s", BODY, deadline=deadline)
    # Then each read timeout was the time left (10 s, then 10 - 4 - 1 = 5 s), the second wait
    # ended exactly at the deadline, and no third POST was started
    assert [kw["timeout"][1] for kw in transport.kwargs] == [10.0, 5.0]
    assert clock.sleeps == [1.0, 1.0] and clock.now == deadline
    assert "stopped after 2 attempts" in str(caught.value) and "no time was left" in str(caught.value)


def test_read_timeouts_are_capped_at_the_time_left_but_not_below_the_floor(
    make: Callable[..., Any], clock: Clock
) -> None:
    # Given a client whose read timeout is 30 s
    client, transport = make()
    # When rows are posted with 100 s, 2 s and 0.1 s left, and with no deadline
    client.post_body("s", BODY, deadline=clock.now + 100.0)
    client.post_body("s", BODY, deadline=clock.now + 2.0)
    client.post_body("s", BODY, deadline=clock.now + 0.1)
    client.post_body("s", BODY)
    # Then the connect timeout is kept and the read timeout is the time left, floored
    assert [kw["timeout"] for kw in transport.kwargs] == [
        (3.05, 30.0),
        (3.05, 2.0),
        (3.05, READ_TIMEOUT_FLOOR),
        (3.05, 30.0),
    ]
    assert READ_TIMEOUT_FLOOR == 0.5


def test_a_token_mint_on_the_way_keeps_to_the_deadline(
    fake_http: Callable[..., Any], clock: Clock, secret_text: str
) -> None:
    # Given no token yet, and an Auth API that answers 503 "retry after 3 s"
    seen: list[str] = []

    def monetate(request: PreparedRequest) -> Any:
        seen.append(str(request.url).split("/api/", 1)[1].split("?")[0])
        return failing(503, retry_after="3")

    class Secret:
        def get(self) -> Any:
            return parse_secret(secret_text)

        refresh = get

    session, transport = fake_http(monetate)
    tokens = TokenProvider(
        Secret(), f"{API}/api/auth/v0/refresh/", session=session, sleep=clock.sleep, monotonic=clock
    )
    client = MonetateClient(
        data_api_base=BASE, auth=TokenAuth(tokens), session=session, sleep=clock.sleep, monotonic=clock
    )
    # When rows are posted with 1 s left
    with pytest.raises(DeadlineExceededError) as caught:
        client.post_body("s", BODY, deadline=clock.now + 1.0)
    # Then the mint was tried once with a 1 s read timeout, never slept, and no data POST was sent
    assert seen == ["auth/v0/refresh/"] and clock.sleeps == []
    assert transport.kwargs[0]["timeout"] == (3.05, 1.0)
    message = str(caught.value)
    assert message.startswith("POST /api/data/v1/acme/production/data/s/: stopped after 1 attempt")
    assert "minting a Monetate token" in message and "left for the next invocation" in message
    assert "Token " not in message and "JWT " not in message


# --- within the deadline ------------------------------------------------------------------------


def test_retries_that_fit_before_the_deadline_are_made(make: Callable[..., Any], clock: Clock) -> None:
    # Given a 429 asking for 2 s, then success, and 10 s left
    client, transport = make(failing(429, retry_after="2"))
    deadline = clock.now + 10.0
    # When rows are posted  Then the client waited the 2 s and the retry read with 8 s left
    assert client.post_body("s", BODY, deadline=deadline) == {}
    assert clock.sleeps == [2.0]
    assert [kw["timeout"] for kw in transport.kwargs] == [(3.05, 10.0), (3.05, 8.0)]
    assert client.stats == {"requests": 2, "retries": 1, "throttled": 1}


def test_without_a_deadline_retries_run_their_whole_budget(make: Callable[..., Any], clock: Clock) -> None:
    # Given five 503s asking for 5 s each  When rows are posted without a deadline
    client, transport = make(*[failing(503, retry_after="5")] * 5)
    with pytest.raises(TransientApiError) as caught:
        client.post_body("s", BODY)
    # Then today's behaviour: 1 + 4 attempts, four waits, not a deadline error
    assert not isinstance(caught.value, DeadlineExceededError)
    assert len(transport.sent) == 5 and clock.sleeps == [5.0] * 4
