"""The ``push`` progress bar (tqdm): what it shows, when it is off, and that Lambda never loads tqdm."""

from __future__ import annotations

import io
import subprocess
import sys
import time
from pathlib import Path

import pytest
from monetate_ingest.cli.progress import MISSING_TQDM, ProgressBar, Sample, Ticker, counts_text, stream_is_tty

ROOT = Path(__file__).resolve().parents[3]


class Terminal(io.StringIO):
    """A stream that says it is a terminal."""

    def isatty(self) -> bool:
        return True


def lines_drawn(text: str) -> list[str]:
    """The successive states of a bar redrawn in place with carriage returns."""
    return [x for x in text.replace("\n", "").split("\r") if x]


# --- unhappy paths first ---------------------------------------------------------------------


def test_without_tqdm_the_push_goes_on_without_a_bar_and_says_how_to_get_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given an installation without tqdm (the Lambda layer's requirements only)
    monkeypatch.setitem(sys.modules, "tqdm", None)
    stream = Terminal()
    # When a bar is asked for
    bar = ProgressBar(stream, 100)
    bar.update(Sample(bytes_read=50, read=5))
    bar.close(Sample(bytes_read=100, read=10))
    # Then one line says why there is no bar and what to install, and nothing else is drawn
    assert not bar.enabled
    assert stream.getvalue() == MISSING_TQDM + "\n"
    assert "pip install tqdm" in MISSING_TQDM and "--quiet" in MISSING_TQDM


def test_a_disabled_bar_writes_nothing_and_its_ticker_starts_no_thread() -> None:
    stream = Terminal()
    bar = ProgressBar(stream, 100, enabled=False)
    samples: list[int] = []

    def sample() -> Sample:
        samples.append(1)
        return Sample(read=1)

    with Ticker(bar, sample, interval=0.001) as ticker:
        assert ticker._thread is None
    assert stream.getvalue() == ""
    assert samples == [1]  # only the final close, which draws nothing


def test_streams_that_are_not_terminals_or_are_closed_are_not_ttys() -> None:
    closed = io.StringIO()
    closed.close()
    assert stream_is_tty(Terminal())
    assert not stream_is_tty(io.StringIO())
    assert not stream_is_tty(closed)
    assert not stream_is_tty(object())  # type: ignore[arg-type]


def test_the_lambda_handlers_and_the_cli_modules_import_without_loading_tqdm() -> None:
    # Given a fresh interpreter that imports the three handlers and the CLI (its bar included)
    code = (
        "import sys\n"
        "import functions.ingest_file.app, functions.post_records.app, functions.validate_record.app\n"
        "import monetate_ingest.cli, monetate_ingest.cli.push, monetate_ingest.cli.progress\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'tqdm'))\n"
    )
    env = {"PYTHONPATH": f"{ROOT / 'layers' / 'monetate_ingest'}:{ROOT}", "PATH": "/usr/bin:/bin"}
    # When it runs
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=False
    )
    # Then tqdm was never loaded
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


# --- what it shows ---------------------------------------------------------------------------


def test_the_counts_name_read_posted_rejected_and_parked_only_when_there_are_any() -> None:
    assert counts_text(Sample(read=1200, posted=1190, rejected=10)) == "read 1,200  posted 1,190  rejected 10"
    parked = Sample(read=9, posted=4, rejected=0, parked=5)
    assert counts_text(parked) == "read 9  posted 4  rejected 0  parked 5"
    assert counts_text(Sample(read=3, posted=3), dry_run=True) == "read 3  valid 3  rejected 0"


def test_the_final_bar_shows_the_whole_file_read_and_the_counts_on_one_line() -> None:
    # Given a bar over a 2 MiB file on a terminal
    stream = Terminal()
    bar = ProgressBar(stream, 2 * 1024 * 1024, label="orders.csv")
    # When the run moves half-way and then ends
    bar.update(Sample(bytes_read=1024 * 1024, read=400, posted=390, rejected=10))
    bar.close(Sample(bytes_read=2 * 1024 * 1024, read=800, posted=780, rejected=10, parked=10))
    # Then the bar was redrawn in place and its last state is the whole file and the final counts
    text = stream.getvalue()
    assert text.startswith("\r") and text.endswith("\n") and text.count("\n") == 1
    final = lines_drawn(text)[-1]
    assert final.startswith("orders.csv: 100%|")
    assert "2.00M/2.00M" in final
    assert final.endswith("read 800  posted 780  rejected 10  parked 10]")
    assert not bar.enabled  # closed: later updates draw nothing
    bar.update(Sample(read=900))
    assert stream.getvalue() == text


def test_a_dry_run_says_so_and_an_empty_file_shows_bytes_without_a_percentage() -> None:
    stream = Terminal()
    bar = ProgressBar(stream, 0, dry_run=True, label="empty.csv")
    bar.close(Sample(read=0))
    final = lines_drawn(stream.getvalue())[-1]
    assert final.startswith("empty.csv (dry run): 0.00B")
    assert "%" not in final
    assert final.endswith("read 0  valid 0  rejected 0]")


def test_updates_within_the_interval_are_not_redrawn() -> None:
    # Given a bar that may redraw at most once an hour
    stream = Terminal()
    bar = ProgressBar(stream, 1000, min_interval=3600)
    # When it is updated many times
    for i in range(1, 101):
        bar.update(Sample(bytes_read=i * 10, read=i))
    bar.close(Sample(bytes_read=1000, read=100))
    # Then only its first state and its final one were drawn
    drawn = lines_drawn(stream.getvalue())
    assert len(drawn) == 2
    assert drawn[0].startswith("push:   0%|") and drawn[1].startswith("push: 100%|")


def test_the_ticker_samples_the_run_until_closed_then_draws_the_final_state() -> None:
    # Given a bar and a run whose counts grow each time they are sampled
    stream = Terminal()
    bar = ProgressBar(stream, 100, min_interval=0)
    seen: list[int] = []

    def sample() -> Sample:
        seen.append(len(seen) + 1)
        n = min(len(seen) * 10, 100)
        return Sample(bytes_read=n, read=n)

    # When the ticker runs until the counts have been sampled a few times
    with Ticker(bar, sample, interval=0.001):
        while len(seen) < 3:
            time.sleep(0.001)
    # Then each sample moved the bar, and the last line is the state at close
    drawn = lines_drawn(stream.getvalue())
    assert len(drawn) >= 3
    assert drawn[-1].endswith(f"read {min(len(seen) * 10, 100)}  posted 0  rejected 0]")
    assert stream.getvalue().endswith("\n")
