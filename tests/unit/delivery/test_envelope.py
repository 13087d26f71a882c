"""The SQS envelope: parse, validate, build."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from monetate_ingest.delivery.envelope import Envelope, build_envelope, parse_envelope
from monetate_ingest.delivery.exceptions import EnvelopeError


def test_a_valid_envelope_is_parsed_with_its_source() -> None:
    # Given an envelope as IngestFile parks it
    body = json.dumps(
        {
            "schema": "purchases",
            "rows": [{"id": "1"}, {"id": "2"}],
            "source": {"bucket": "b", "lines": [2, 3]},
        }
    )
    # When it is parsed
    env = parse_envelope(body)
    # Then schema, rows and source come back as sent
    assert env == Envelope("purchases", [{"id": "1"}, {"id": "2"}], {"bucket": "b", "lines": [2, 3]})


def test_source_is_optional() -> None:
    assert parse_envelope('{"schema":"s","rows":[{}]}').source is None


@pytest.mark.parametrize(
    ("body", "code", "words"),
    [
        ("not json", "invalid_json", "not valid JSON"),
        ("", "invalid_json", "not valid JSON"),
        ('{"schema":"s","rows":[{"p":NaN}]}', "invalid_json", "NaN"),
        ("[1, 2]", "not_an_envelope", "array"),
        ('"hello"', "not_an_envelope", "string"),
        ('{"schema":"s","rows":[{}],"extra":1}', "not_an_envelope", "'extra'"),
        ('{"rows":[{}]}', "missing_schema", '"schema"'),
        ('{"schema":"","rows":[{}]}', "missing_schema", '"schema"'),
        ('{"schema":42,"rows":[{}]}', "invalid_schema", "42"),
        ('{"schema":"a/b","rows":[{}]}', "invalid_schema", "'a/b'"),
        ('{"schema":".","rows":[{}]}', "invalid_schema", "a dot segment is never a name"),
        ('{"schema":"..","rows":[{}]}', "invalid_schema", "a letter first"),
        ('{"schema":"' + "s" * 65 + '","rows":[{}]}', "invalid_schema", "65 characters"),
        ('{"schema":"s","rows":[{"a":' + "[" * 100_000 + "]" * 100_000 + "}]}", "invalid_json", "too deeply"),
        ('{"schema":"s","rows":[{"a":' + "[" * 33 + "]" * 33 + "}]}", "invalid_rows", "more than 32 levels"),
        ('{"schema":"s"}', "invalid_rows", 'no "rows"'),
        ('{"schema":"s","rows":{"a":1}}', "invalid_rows", "object"),
        ('{"schema":"s","rows":[{},3]}', "invalid_rows", '"rows"[1]'),
        ('{"schema":"s","rows":[]}', "empty_rows", "empty"),
        ('{"schema":"s","rows":[{}],"source":"x"}', "invalid_source", '"source"'),
    ],
)
def test_what_is_not_an_envelope_is_named(body: str, code: str, words: str) -> None:
    # Given a body that is not the documented envelope
    # When it is parsed
    with pytest.raises(EnvelopeError) as caught:
        parse_envelope(body)
    # Then the error's code is the DLQ error_type and its message says what is wrong
    assert caught.value.code == code
    assert words in caught.value.message


def test_build_writes_compact_utf8_json_that_parses_back() -> None:
    # Given rows with non-ASCII text
    rows = [{"name": "Zoë", "n": 1}]
    # When an envelope is built
    body = build_envelope("people", rows, source={"bucket": "b", "key": "k", "lines": [2]})
    # Then it is compact, keeps the text as UTF-8 and round-trips
    assert (
        body
        == '{"schema":"people","rows":[{"name":"Zoë","n":1}],"source":{"bucket":"b","key":"k","lines":[2]}}'
    )
    assert parse_envelope(body) == Envelope("people", rows, {"bucket": "b", "key": "k", "lines": [2]})


def test_build_escapes_lone_surrogates_so_sqs_accepts_the_body() -> None:
    body = build_envelope("s", [{"t": "a\ud800b"}])
    body.encode("utf-8")  # would raise if a lone surrogate were left raw
    assert parse_envelope(body).rows == [{"t": "a\ud800b"}]


@pytest.mark.parametrize(
    ("schema", "rows", "code"),
    [
        ("", [{"a": 1}], "missing_schema"),
        ("s", [], "empty_rows"),
        ("s", [{"p": float("nan")}], "invalid_rows"),
    ],
)
def test_build_refuses_what_parse_would_refuse(schema: str, rows: list[dict[str, Any]], code: str) -> None:
    with pytest.raises(EnvelopeError) as caught:
        build_envelope(schema, rows)
    assert caught.value.code == code


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=8,
)


@given(
    schema=st.from_regex(r"[A-Za-z][A-Za-z0-9_-]{0,63}", fullmatch=True),
    rows=st.lists(st.dictionaries(st.text(), json_values, max_size=4), min_size=1, max_size=4),
    source=st.none() | st.dictionaries(st.text(), json_values, max_size=3),
)
def test_build_then_parse_is_the_identity(
    schema: str, rows: list[dict[str, Any]], source: dict[str, Any] | None
) -> None:
    # Given any valid content, when built and parsed back, then nothing is lost
    env = parse_envelope(build_envelope(schema, rows, source))
    assert (env.schema, env.rows, env.source) == (schema, rows, source)


@given(st.text(max_size=200))
def test_parse_never_raises_anything_but_envelope_error(body: str) -> None:
    try:
        parse_envelope(body)
    except EnvelopeError as exc:
        assert exc.code and exc.message
