"""The table of contents at the top of ``template.yaml``, checked against the body. Standard library only.

The contents is a comment block: a ``# Contents`` line, then one entry per section::

    #  2. The data bucket      DataBucket, DataBucketPolicy

(number, title, two or more spaces, the top-level keys and logical ids the section holds, comma
separated; a remark in parentheses is ignored; a line indented further continues the entry). Each
section begins at a matching header in the body, ``# ===== 2. The data bucket``, and runs to the next
one. :func:`toc_problems` says, one readable line each, where the two disagree: a section without
its header or out of order, a header the contents do not list, and a key or resource that sits
in another section than the one naming it, or that no section names. So a resource added without
its entry fails ``make lint`` with the line to add.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_CONTENTS = re.compile(r"^# Contents\b")
_ENTRY = re.compile(r"^#\s+(\d+)\.\s(.+?)(?:\s{2,}(.*))?$")
_CONTINUATION = re.compile(r"^#\s{5,}(\S.*)$")
_HEADER = re.compile(r"^\s*# =+ (\d+)\. (.+?)\s*$")
_TOP_KEY = re.compile(r"^([A-Za-z][A-Za-z0-9]*):")
_RESOURCE = re.compile(r"^  ([A-Za-z][A-Za-z0-9]*):")
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9]*$")
#: Top-level keys that come before the contents and belong to no section.
PREAMBLE = ("AWSTemplateFormatVersion", "Transform", "Description")


@dataclass
class Entry:
    """One line of the contents: the section's number, title and the names it holds."""

    number: int
    title: str
    line: int
    names: list[str] = field(default_factory=list)
    text: str = ""


def parse_contents(lines: list[str]) -> tuple[list[Entry], list[str]]:
    """The entries of the first ``# Contents`` block, and what is malformed in it."""
    start = next((i for i, line in enumerate(lines) if _CONTENTS.match(line)), None)
    if start is None:
        return [], ["no table of contents: expected a '# Contents' comment block at the top"]
    entries: list[Entry] = []
    problems: list[str] = []
    for i in range(start + 1, len(lines)):
        line = lines[i].rstrip()
        if not line.startswith("#"):
            break
        entry = _ENTRY.match(line)
        more = _CONTINUATION.match(line)
        if entry:
            entries.append(
                Entry(int(entry.group(1)), entry.group(2).strip(), i + 1, text=entry.group(3) or "")
            )
        elif more and entries:
            entries[-1].text += " " + more.group(1)
    for n, entry in enumerate(entries, start=1):
        if entry.number != n:
            problems.append(f"contents line {entry.line}: section {entry.number} should be numbered {n}")
        for part in re.sub(r"\([^)]*\)", "", entry.text).split(","):
            name = part.strip()
            if not name:
                continue
            if _NAME.match(name):
                entry.names.append(name)
            else:
                problems.append(
                    f"contents line {entry.line}: {name!r} is not a top-level key or logical id "
                    "(put remarks in parentheses)"
                )
    if not entries:
        problems.append(f"line {start + 1}: the '# Contents' block lists no section ('#  1. Title  Names')")
    return entries, problems


def items(lines: list[str]) -> list[tuple[str, int]]:
    """(name, line) of every top-level key (but the preamble and ``Resources``) and every resource."""
    found: list[tuple[str, int]] = []
    in_resources = False
    for i, line in enumerate(lines, start=1):
        top = _TOP_KEY.match(line)
        if top:
            in_resources = top.group(1) == "Resources"
            if top.group(1) not in (*PREAMBLE, "Resources"):
                found.append((top.group(1), i))
            continue
        res = _RESOURCE.match(line) if in_resources else None
        if res:
            found.append((res.group(1), i))
    return found


def toc_problems(text: str) -> list[str]:
    """Every disagreement between the contents and the body of the template ``text``."""
    lines = text.splitlines()
    entries, problems = parse_contents(lines)
    if not entries:
        return problems
    headers = [
        (int(m.group(1)), m.group(2), i) for i, line in enumerate(lines, 1) if (m := _HEADER.match(line))
    ]
    listed = [(e.number, e.title) for e in entries]
    for number, title, line in headers:
        if (number, title) not in listed:
            problems.append(f"line {line}: header '{number}. {title}' is not in the contents")
    found = [(n, t) for n, t, _ in headers if (n, t) in listed]
    for entry in entries:
        if (entry.number, entry.title) not in found:
            problems.append(
                f"section {entry.number} '{entry.title}' is in the contents but the body has no "
                f"'# ===== {entry.number}. {entry.title}' header"
            )
    if found != [x for x in listed if x in found]:
        problems.append(
            "the section headers are not in the contents' order: " + ", ".join(f"{n}. {t}" for n, t in found)
        )
    owner = {name: e for e in entries for name in e.names}
    starts = sorted((line, number) for number, title, line in headers if (number, title) in listed)
    by_number = {e.number: e for e in entries}
    for name, line in items(lines):
        section = next((by_number[n] for start, n in reversed(starts) if start < line), None)
        where = f"{name} (line {line})"
        if name not in owner:
            hint = f"add it to section {section.number} '{section.title}'" if section else "add it"
            problems.append(f"{where} is in no section of the contents: {hint}")
        elif section is None:
            problems.append(f"{where} comes before the first section header")
        elif owner[name] is not section:
            problems.append(
                f"{where} sits in section {section.number} '{section.title}' but the contents list it "
                f"under {owner[name].number} '{owner[name].title}'"
            )
    present = {name for name, _ in items(lines)}
    for entry in entries:
        for name in entry.names:
            if name not in present:
                problems.append(
                    f"contents line {entry.line}: {name} is listed under '{entry.title}' but the template "
                    "has no such key or resource"
                )
    return problems
