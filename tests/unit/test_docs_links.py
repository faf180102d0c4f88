"""Every relative link in the repository's Markdown files points to a file that exists and, where it names
one, to a heading that file has: moving a section (docs/ to benchmarks/curation/DEVELOPMENT.md, say) must
move its links too."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from helpers import ROOT

LINK = re.compile(r"\]\(([^)\s]+)\)")


def markdown_files() -> list[Path]:
    """The tracked and new Markdown files (not the virtual environment's or DVC's)."""
    listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "*.md"], cwd=ROOT,
                            capture_output=True, text=True, check=True).stdout.split()
    return [ROOT / p for p in listed if (ROOT / p).exists()]


def anchors(path: Path) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation other than hyphens and underscores dropped, spaces as hyphens."""
    out = set()
    in_code = False
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):
            in_code = not in_code
        if not in_code and (m := re.match(r"#+ (.*)", line)):
            out.add(re.sub(r"[^\w\- ]", "", m.group(1).strip().lower()).replace(" ", "-"))
    return out


def test_anchor_rule_matches_githubs() -> None:
    page = ROOT / "docs" / "curation.md"
    assert "defect-checks" in anchors(page)
    assert "free-form-data-length-is-not-quality-issue-12" in anchors(ROOT / "benchmarks" / "curation" / "DEVELOPMENT.md")


@pytest.mark.parametrize("page", markdown_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(page: Path) -> None:
    broken = []
    for target in LINK.findall(page.read_text(encoding="utf-8")):
        if re.match(r"[a-z]+:", target):  # http:, https:, mailto:
            continue
        file_part, _, anchor = target.partition("#")
        linked = (page.parent / file_part).resolve() if file_part else page
        if not linked.exists():
            broken.append(f"{target}: no such file")
        elif anchor and linked.suffix == ".md" and anchor not in anchors(linked):
            broken.append(f"{target}: no heading #{anchor}")
    assert not broken, broken
