"""Diffs as text, markdown or JSON: counts and the settings each run decided with first, then the rows, each
flipped, added or removed row with its texts on one line, its confidences and why each run decided it."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

from clearcurate.data.versioning.diff import CONFIDENCE_TOLERANCE, OutcomeDiff, RowDiff

TEXT_WIDTH = 160  # prompts and responses of the rows shown, one line each, in text and markdown (0: whole)


def _clip(items: list[Any], limit: int | None) -> tuple[list[Any], int]:
    if limit is None or len(items) <= limit:
        return items, 0
    return items[:limit], len(items) - limit


def render_rows(diff: RowDiff, title: str, fmt: str, limit: int | None = 50, width: int = TEXT_WIDTH) -> str:
    """Summary counts first, then the rows (at most `limit` per section in text and markdown); an added or
    removed row that was described comes with its confidence, texts and each run's outcome and reason."""
    if fmt == "json":
        body = {
            "title": title,
            "summary": diff.summary(),
            "added": diff.added,
            "removed": diff.removed,
            "response_changed": [{"id": i, "diff": d} for i, d in diff.response_changed.items()],
            "confidence_changed": [{"id": i, "a": x, "b": y} for i, (x, y) in diff.confidence_changed.items()],
            "rows": diff.rows,
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
    sections: list[tuple[str, list[tuple[str, str | None]]]] = [
        ("added", [(f"+ {i}", i) for i in diff.added]),
        ("removed", [(f"- {i}", i) for i in diff.removed]),
        ("response changed", [(f"~ {i}: {d}", None) for i, d in diff.response_changed.items()]),
        ("confidence changed", [(f"{i}: {x:.4f} -> {y:.4f} ({y - x:+.4f})", None) for i, (x, y) in diff.confidence_changed.items()]),
    ]
    for name, items in sections:
        if not items:
            continue
        shown, more = _clip(items, limit)
        lines += ["", f"### {name}" if md else f"{name}:"]
        for item, described in shown:
            detail = diff.rows.get(described or "", {})
            pair = _confidence_pair(detail.get("confidence_a"), detail.get("confidence_b"))
            conf = f" (confidence {pair})" if pair else ""
            if md:
                lines.append(f"- `{item[2:]}`{conf}" if item[:2] in ("+ ", "- ", "~ ") else f"- {item}")
            else:
                lines.append(f"  {item}{conf}")
            lines += _detail_lines(detail, md, width, (("outcome_a", "before"), ("reason_a", "why before"),
                                                       ("outcome_b", "after"), ("reason_b", "why after")))
        if more:
            lines.append(f"{'- ' if md else '  '}… and {more} more (--limit to show more)")
    return "\n".join(lines)


def _detail_lines(detail: dict[str, Any], md: bool, width: int, extra: tuple[tuple[str, str], ...]) -> list[str]:
    """A shown row's prompt, response and decisions, one line each, indented under it."""
    lines = []
    for name, label in (("prompt", "prompt"), ("response", "response"), *extra):
        if detail.get(name) is not None:
            text = one_line(str(detail[name]), width)
            lines.append(f"  - {label}: {text}" if md else f"      {label + ':':<11} {text}")
    return lines


def one_line(text: str, width: int = TEXT_WIDTH) -> str:
    """Text on one line (whitespace runs collapsed), cut to `width` characters with an ellipsis (0: whole)."""
    flat = " ".join(text.split())
    return flat if width <= 0 or len(flat) <= width else flat[: width - 1].rstrip() + "…"


def _confidence_pair(a: float | None, b: float | None) -> str:
    """One confidence where both runs saw the same (a threshold moved, not the score), else both and the change."""
    if a is None and b is None:
        return ""
    if a is not None and b is not None and abs(b - a) <= CONFIDENCE_TOLERANCE:
        return _number(a)
    change = f" ({b - a:+.4f})" if a is not None and b is not None else ""
    return f"{_number(a)} -> {_number(b)}{change}"


def _settings(diff: OutcomeDiff) -> str:
    """What each run decided with (e.g. `gamma 0.2630 -> 0.3270, threshold quantile 0.2 -> quantile 0.25`)."""
    parts = []
    for key in dict.fromkeys([*diff.settings_a, *diff.settings_b]):
        a, b = (_setting(s.get(key)) for s in (diff.settings_a, diff.settings_b))
        parts.append(f"{key} {a}" + ("" if a == b else f" -> {b}"))
    return ", ".join(parts)


def _setting(value: Any) -> str:
    return "n/a" if value is None else f"{value:.4f}" if isinstance(value, float) else str(value)


def _number(c: float | None) -> str:
    return "n/a" if c is None else f"{c:.4f}"


def render_outcomes(diff: OutcomeDiff, title: str, fmt: str, limit: int | None = 50, width: int = TEXT_WIDTH) -> str:
    """Settings and counts of both runs, the transitions, then the flipped rows in `diff.flipped`'s order."""
    if fmt == "json":
        return json.dumps({"title": title, **asdict(diff), "transitions": diff.transitions()}, indent=2, ensure_ascii=False)
    md = fmt == "markdown"
    names = sorted(set(diff.counts_a) | set(diff.counts_b))
    lines = [f"## {title}" if md else title, ""]
    if diff.settings_a or diff.settings_b:
        lines += [f"settings: {_settings(diff)}", ""]
    if md:
        lines += ["| outcome | before | after |", "|---|---|---|"]
        lines += [f"| {n} | {diff.counts_a.get(n, 0)} | {diff.counts_b.get(n, 0)} |" for n in names]
    else:
        lines += [f"{n}: {diff.counts_a.get(n, 0)} -> {diff.counts_b.get(n, 0)}" for n in names]
    lines += ["", f"{len(diff.flipped)} row{'' if len(diff.flipped) == 1 else 's'} changed decision" + (":" if diff.flipped else ".")]
    lines += [f"{'- ' if md else '  '}{t}: {n}" for t, n in diff.transitions().items()]
    shown, more = _clip(list(diff.flipped.items()), limit)
    if shown:
        lines += ["", "### rows" if md else "rows:"]
        for i, (x, y) in shown:
            detail = diff.rows.get(i, {})
            conf = _confidence_pair(detail.get("confidence_a"), detail.get("confidence_b"))
            lines.append(f"{'- ' if md else '  '}{i}: {x} -> {y}" + (f" (confidence {conf})" if conf else ""))
            lines += _detail_lines(detail, md, width, (("reason_a", "why before"), ("reason_b", "why after")))
        if more:
            lines.append(f"{'- ' if md else '  '}… and {more} more (--limit to show more)")
    return "\n".join(lines)
