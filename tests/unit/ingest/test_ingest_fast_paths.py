"""The fast paths of the ingest: a memo that stops memoising, batches of encoded rows."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from monetate_ingest.delivery.batching import Batcher
from monetate_ingest.formats.coercion import encoder as cells_encoder
from monetate_ingest.formats.coercion import plan
from monetate_ingest.formats.coercion.converters import Invalid
from monetate_ingest.formats.encoding import encode_row
from requests import PreparedRequest
from requests.auth import AuthBase


def _number(cell: str) -> int:
    try:
        return int(cell)
    except ValueError:
        raise Invalid("is not a number") from None


def _encoder(columns: list[str]) -> tuple[Callable[[list[str]], bytes], Callable[[list[str]], Any]]:
    steps: list[plan.Step] = [("id", "id", _number, None), ("name", "name", None, None)]
    coerce = plan.compile_cells_plan(steps, [], columns)
    assert coerce is not None
    encoder = cells_encoder.compile_cells_encoder(steps, [], columns, coerce, encode_row)
    assert encoder is not None
    return encoder.row, coerce


def _fns(encode: Any) -> list[Any]:
    """The encoder's per-column functions (the memos' ``__getitem__`` or ``convert``)."""
    found: list[Any] = encode.__self__.fns
    return found


def test_a_unique_column_stops_memoising_and_stays_exact(monkeypatch: Any) -> None:
    monkeypatch.setattr(plan, "MEMO_SIZE", 8)
    encode, coerce = _encoder(["id", "name"])
    fns = _fns(encode)
    fragments = fns[0].__self__
    for i in range(40):  # every id unique: the memo fills with no hits and is dropped
        assert encode([str(i), f"n{i}"]) == encode_row(coerce([str(i), f"n{i}"])).encode()
    assert fns[0] == fragments.convert
    assert len(fragments) == 0
    assert encode(["7", "x"]) == b'{"id":7,"name":"x"}'


def test_a_repeating_column_keeps_its_memo(monkeypatch: Any) -> None:
    monkeypatch.setattr(plan, "MEMO_SIZE", 8)
    encode, _ = _encoder(["id", "name"])
    fns = _fns(encode)
    for i in range(400):  # runs of one value: mostly hits, but the memo fills and is cleared
        encode([str((i // 20) % 9), "n"])
    assert isinstance(fns[0].__self__, cells_encoder.Fragments)
    assert fns[0] != fns[0].__self__.convert


def test_batcher_mixing_encoded_and_dict_rows_keeps_rows_aligned() -> None:
    batcher = Batcher(max_rows=10, max_bytes=10_000)
    assert batcher.add_encoded(1, b'{"a":1}') is None
    assert batcher.add(2, {"a": 2}) is None
    assert batcher.add_encoded(3, b'{"a":3}') is None
    batch = batcher.flush()
    assert batch is not None
    assert batch.lines == [1, 2, 3]
    assert batch.rows == [{"a": 1}, {"a": 2}, {"a": 3}]
    assert batch.body == b'{"schema_rows":[{"a":1},{"a":2},{"a":3}]}'
    batcher.add(4, {"b": 1})
    only_dicts = batcher.flush()
    assert only_dicts is not None and only_dicts.rows == [{"b": 1}]


def test_batcher_of_encoded_rows_splits_on_rows_and_bytes() -> None:
    batcher = Batcher(max_rows=2, max_bytes=10_000)
    outs = [batcher.add_encoded(i, b'{"i":%d}' % i) for i in range(5)]
    full = [b for b in outs if b is not None]
    assert [b.lines for b in full] == [[0, 1], [2, 3]]
    assert full[0].rows == [{"i": 0}, {"i": 1}]


class _Auth(AuthBase):
    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, r: PreparedRequest) -> PreparedRequest:
        self.calls += 1
        r.headers["Authorization"] = f"Token t{self.calls}"
        r.hooks["response"].append(lambda resp, **kw: resp)
        return r
