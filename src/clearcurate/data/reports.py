"""Plot data for `dvc plots`, and what makes the HTML reports render offline.

The plot data are pure functions over the stage outputs, so the numbers behind a plot are
testable without DVC. The reports (`dvc plots show`, the Great Expectations Data Docs) load their
scripts and styles from the vendored copies in `clearcurate/web/vendor` instead of CDNs;
`remote_loads` finds what a page would still fetch from the network.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from html.parser import HTMLParser
from pathlib import Path

from clearcurate.core import outcomes
from clearcurate.core.outcomes import Outcome
from clearcurate.core.records import Record

WEB = Path(__file__).parents[1] / "web"  # dvc_plots.html (the `dvc plots` page template) and vendor/
VENDOR = WEB / "vendor"  # minified JS / CSS with their licences (vendor/README.md)


def confidence_histogram(scored: Sequence[Record], outcome: Mapping[str, str], bins: int = 20) -> list[dict[str, float]]:
    """Rows per confidence bin, split by final outcome (kept / corrected / removed).

    Corrected rows were removed by the filter and then rewritten, so kept vs the other two is
    the filter's cut, and corrected vs removed is Auto-Correct's.
    """
    counts = {o.value: [0] * bins for o in (Outcome.KEPT, Outcome.CORRECTED, Outcome.REMOVED)}
    for row in scored:
        name = outcome.get(row["id"])
        if name in counts:
            index = min(int(float(row["confidence"]) * bins), bins - 1)
            counts[name][index] += 1
    return [
        {"confidence": round((i + 0.5) / bins, 6), **{name: counts[name][i] for name in counts}}
        for i in range(bins)
    ]


def outcome_counts(entries: Sequence[Record]) -> list[dict[str, int | str]]:
    """Rows per curation outcome, every outcome listed (0 when none), in a fixed order."""
    return [{"outcome": name, "rows": n} for name, n in outcomes.outcome_counts(entries).items()]


_FETCHED_BY = {"script": "src", "img": "src", "link": "href"}  # the attribute a page fetches on opening
_CSS_URL = re.compile(r"""url\(\s*['"]?([^'")\s]+)""")


class _Loads(HTMLParser):
    """Collects the URLs a page fetches by itself: scripts, stylesheets and other <link>s, images."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        wanted = _FETCHED_BY.get(tag)
        self.urls += [value for name, value in attrs if name == wanted and value]


def page_loads(page: Path) -> list[str]:
    """The URLs an HTML page or stylesheet loads on opening (scripts, stylesheets, images, CSS
    `url(...)`; not links to click), in order, as written: relative, absolute or remote."""
    text = page.read_text(encoding="utf-8")
    if page.suffix == ".css":
        return _CSS_URL.findall(text)
    parser = _Loads()
    parser.feed(text)
    return parser.urls


def remote_loads(page: Path) -> list[str]:
    """What of `page_loads` needs the network."""
    return [url for url in page_loads(page) if url.startswith(("http://", "https://", "//"))]
