"""template.yaml's table of contents: it lists the sections in order, and the body agrees with it.

The check (``scripts/template_toc.py``) runs in ``make lint`` through ``scripts.template_check``, so
a resource added without its entry, or a section moved, is reported with what to fix.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from scripts import template_check
from scripts.template_toc import parse_contents, toc_problems

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"

SECTIONS = [
    "Parameters",
    "The data bucket",
    "Queues",
    "The idempotency table",
    "The secret's use",
    "Layer and functions",
    "API",
    "Alarms",
    "Dashboard",
    "Outputs",
]


@pytest.fixture(scope="module")
def text() -> str:
    return TEMPLATE.read_text(encoding="utf-8")


# --- what a developer who breaks it is told ------------------------------------------------


def test_a_resource_without_an_entry_is_reported_with_the_section_to_add_it_to(text: str) -> None:
    # Given a queue added to the queues section but not to the contents
    changed = text.replace(
        "  QueuesTlsOnlyPolicy:\n", "  AuditQueue:\n    Type: AWS::SQS::Queue\n\n  QueuesTlsOnlyPolicy:\n", 1
    )
    line = changed.splitlines().index("  AuditQueue:") + 1
    # When the contents are checked
    problems = toc_problems(changed)
    # Then exactly that resource is named, with its line and where to list it
    assert problems == [
        f"AuditQueue (line {line}) is in no section of the contents: add it to section 3 'Queues'"
    ]


def test_a_resource_in_another_section_than_its_entry_is_reported(text: str) -> None:
    # Given the dashboard moved up, above the alarms' header (so into the API section)
    start = text.index("  Dashboard:\n")
    dashboard = text[start : text.index("# ==", start)]
    alarms = next(x for x in text.splitlines() if x.endswith(" 8. Alarms"))
    moved = text.replace(dashboard, "", 1).replace(alarms, dashboard + alarms, 1)
    # When checked, Then it says where the resource is and where the contents put it
    problems = toc_problems(moved)
    assert len(problems) == 1
    assert problems[0].startswith("Dashboard (line ")
    assert problems[0].endswith("sits in section 7 'API' but the contents list it under 9 'Dashboard'")


def test_a_missing_header_and_headers_out_of_order_are_reported(text: str) -> None:
    # Given the queues' header deleted
    queues = next(x for x in text.splitlines() if x.endswith(" 3. Queues"))
    problems = toc_problems(text.replace(queues + "\n", "", 1))
    # Then the section is named with the header to add (and its resources now sit in section 2)
    assert "section 3 'Queues' is in the contents but the body has no '# ===== 3. Queues' header" in problems
    assert any(
        p.startswith("RecordsQueue (line ") and "sits in section 2 'The data bucket'" in p for p in problems
    )

    # Given the API and alarms headers swapped
    api = next(x for x in text.splitlines() if x.endswith(" 7. API"))
    alarms = next(x for x in text.splitlines() if x.endswith(" 8. Alarms"))
    swapped = text.replace(api, "@@API@@").replace(alarms, api).replace("@@API@@", alarms)
    # Then the order is reported
    assert any(
        p.startswith("the section headers are not in the contents' order") for p in toc_problems(swapped)
    )


def test_an_entry_naming_nothing_real_or_a_header_not_listed_is_reported(text: str) -> None:
    # Given the contents naming a resource that does not exist, and a stray numbered header
    changed = text.replace(
        "#  9. Dashboard              Dashboard", "#  9. Dashboard              Dashboard, Board2"
    )
    changed = changed.replace("Outputs:\n", "# ===== 11. Extras\n\nOutputs:\n", 1)
    problems = toc_problems(changed)
    assert any(
        "Board2 is listed under 'Dashboard' but the template has no such key or resource" in p
        for p in problems
    )
    assert any(p.endswith("header '11. Extras' is not in the contents") for p in problems)


def test_prose_where_names_belong_and_bad_numbering_are_reported() -> None:
    # Given an entry with a sentence instead of names, and a gap in the numbering
    entries, problems = parse_contents(
        ["# Contents", "#  1. Parameters  Metadata, all the parameters", "#  3. Outputs  Outputs"]
    )
    assert [e.title for e in entries] == ["Parameters", "Outputs"]
    assert (
        "contents line 2: 'all the parameters' is not a top-level key or logical id "
        "(put remarks in parentheses)" in problems
    )
    assert "contents line 3: section 3 should be numbered 2" in problems


def test_a_template_without_contents_is_reported() -> None:
    assert toc_problems("Resources:\n  A:\n    Type: AWS::SQS::Queue\n") == [
        "no table of contents: expected a '# Contents' comment block at the top"
    ]


def test_make_lint_fails_on_a_resource_without_an_entry(
    text: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a copy of the template with a log group nobody listed in the contents
    copy = tmp_path / "template.yaml"
    copy.write_text(
        text.replace(
            "  # -- PostRecords\n",
            "  SpareLogGroup:\n    Type: AWS::Logs::LogGroup\n    Properties:\n      RetentionInDays: 7\n\n"
            "  # -- PostRecords\n",
            1,
        ),
        encoding="utf-8",
    )
    # When the template check runs on it (as `make lint` does)
    code = template_check.main([str(copy)])
    # Then it fails and says what to add where
    err = capsys.readouterr().err
    assert code == 1
    assert "contents: SpareLogGroup (line " in err
    assert "add it to section 6 'Layer and functions'" in err


# --- the template as it is -----------------------------------------------------------------


def test_the_contents_list_the_ten_sections_in_order_and_agree_with_the_body(text: str) -> None:
    entries, problems = parse_contents(text.splitlines())
    assert problems == []
    assert [e.title for e in entries] == SECTIONS
    assert toc_problems(text) == []
    # And the contents come first, before any key but the template's own preamble
    first_key = next(i for i, x in enumerate(text.splitlines()) if x.startswith("Metadata:"))
    assert entries[-1].line < first_key


def test_every_resource_is_named_in_the_contents(text: str) -> None:
    raw = template_check.load_template(TEMPLATE)
    entries, _ = parse_contents(text.splitlines())
    named = {name for e in entries for name in e.names}
    assert set(raw["Resources"]) <= named
