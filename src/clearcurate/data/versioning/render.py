"""Diffs as text, markdown or JSON: counts first, then the rows, each flipped row with its texts on one line,
its confidences and why each run decided it."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

from clearcurate.data.versioning.diff import OutcomeDiff, RowDiff

TEXT_WIDTH = 80  # prompts and responses of flipped rows, one line each, in text and markdown


def _clip(items: list[Any], limit: int | None) -> tuple[list[Any], int]:
    if limit is None or len(items) <= limit:
        return items, 0
    return items[:limit], len(items) - limit


def render_rows(diff: RowDiff, title: str, fmt: str, limit: int | None = 50) -> str:
    """Summary counts first, then the rows (at most `limit` per section in text and markdown)."""
    if fmt == "json":
        body = {
            "title": title,
            "summary": diff.summary(),
            "added": diff.added,
            "removed": diff.removed,
            "response_changed": [{"id": i, "diff": d} for i, d in diff.response_changed.items()],
            "confidence_changed": [{"id": i, "a": x, "b": y} for i, (x, y) in diff.confidence_changed.items()],
        }
        return json.dumps(body, indent=2, ensure_ascii=False)
    s = diff.summary()
    md = fmt == "markdown"
    lines = [f"## {title}" if md else title, ""]
    if md:
        lines += ["| rows before | rows after | added | removed | response changed | confidence changed |",
                  "|---|---|---|---|---|---|",
                  f"| {s['rows_a']} | {s['rows_b']} | {s['added']} | {s['removed']} "
                  f"| {s['response_changed']} | {s['confidence_changed']} |"]
    else:
        lines.append(f"rows {s['rows_a']} -> {s['rows_b']}: {s['added']} added, {s['removed']} removed, "
                     f"{s['response_changed']} response changed, {s['confidence_changed']} confidence changed")
    sections: list[tuple[str, list[str]]] = [
        ("added", [f"+ {i}" for i in diff.added]),
        ("removed", [f"- {i}" for i in diff.removed]),
        ("response changed", [f"~ {i}: {d}" for i, d in diff.response_changed.items()]),
        ("confidence changed", [f"{i}: {x:.4f} -> {y:.4f} ({y - x:+.4f})" for i, (x, y) in diff.confidence_changed.items()]),
    ]
    for name, items in sections:
        if not items:
            continue
        shown, more = _clip(items, limit)
        lines += ["", f"### {name}" if md else f"{name}:"]
        lines += [f"- `{item[2:]}`" if md and item[:2] in ("+ ", "- ", "~ ") else (f"- {item}" if md else f"  {item}") for item in shown]
        if more:
            lines.append(f"{'- ' if md else '  '}… and {more} more (--limit to show more)")
    return "\n".join(lines)


def one_line(text: str, width: int = TEXT_WIDTH) -> str:
    """Text on one line (whitespace runs collapsed), cut to `width` characters with an ellipsis."""
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1].rstrip() + "…"


def _confidence_pair(a: float | None, b: float | None) -> str:
    if a is None and b is None:
        return ""
    change = f" ({b - a:+.4f})" if a is not None and b is not None else ""
    return f"{_number(a)} -> {_number(b)}{change}"


def _number(c: float | None) -> str:
    return "n/a" if c is None else f"{c:.4f}"


def render_outcomes(diff: OutcomeDiff, title: str, fmt: str, limit: int | None = 50) -> str:
    if fmt == "json":
        return json.dumps({"title": title, **asdict(diff), "transitions": diff.transitions()}, indent=2, ensure_ascii=False)
    md = fmt == "markdown"
    names = sorted(set(diff.counts_a) | set(diff.counts_b))
    lines = [f"## {title}" if md else title, ""]
    if md:
        lines += ["| outcome | before | after |", "|---|---|---|"]
        lines += [f"| {n} | {diff.counts_a.get(n, 0)} | {diff.counts_b.get(n, 0)} |" for n in names]
    else:
        lines += [f"{n}: {diff.counts_a.get(n, 0)} -> {diff.counts_b.get(n, 0)}" for n in names]
    lines += ["", f"{len(diff.flipped)} rows changed decision" + (":" if diff.flipped else ".")]
    lines += [f"{'- ' if md else '  '}{t}: {n}" for t, n in diff.transitions().items()]
    shown, more = _clip(list(diff.flipped.items()), limit)
    if shown:
        lines += ["", "### rows" if md else "rows:"]
        for i, (x, y) in shown:
            detail = diff.rows.get(i, {})
            conf = _confidence_pair(detail.get("confidence_a"), detail.get("confidence_b"))
            lines.append(f"{'- ' if md else '  '}{i}: {x} -> {y}" + (f" (confidence {conf})" if conf else ""))
            for name, label in (("prompt", "prompt"), ("response", "response"), ("reason_a", "why before"), ("reason_b", "why after")):
                if detail.get(name) is not None:
                    text = one_line(str(detail[name]))
                    lines.append(f"  - {label}: {text}" if md else f"      {label + ':':<11} {text}")
        if more:
            lines.append(f"{'- ' if md else '  '}… and {more} more (--limit to show more)")
    return "\n".join(lines)
