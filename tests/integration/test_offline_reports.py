"""The reports load nothing from the network: `dvc plots show` with the project's template, and the Data Docs.

Every page is parsed for what it loads on opening; with `chromium` on PATH the pages are also
rendered headless with the network off, and the charts and tables must be drawn.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pandas as pd
import pytest

from clearcurate.config import ValidateConfig
from clearcurate.core.records import write_json
from clearcurate.data.expectations import instruction_suite, validate
from clearcurate.data.reports import confidence_histogram, outcome_counts, page_loads, remote_loads
from helpers import ROOT, run_cmd

sys.path.insert(0, str(ROOT / "benchmarks"))
import offline_reports  # benchmarks/ is no package: the script is the renderer

needs_chromium = pytest.mark.skipif(shutil.which("chromium") is None,
                                    reason="chromium is not on PATH (Debian: apt-get install chromium); parsed checks only")


def _local_files(page: Path) -> list[Path]:
    """Every file a page loads, resolved from the page; remote loads are checked separately."""
    return [page.parent / urlsplit(url).path for url in page_loads(page) if not urlsplit(url).scheme]


@pytest.fixture(scope="module")
def plots_page(tmp_path_factory) -> Path:
    """`dvc plots show` in a copy of the project's dvc.yaml and .dvc/config, over small plot data."""
    work = tmp_path_factory.mktemp("plots")
    for name in ("dvc.yaml", "params.yaml"):  # dvc.yaml interpolates params
        shutil.copy(ROOT / name, work / name)
    shutil.copytree(ROOT / "src" / "clearcurate" / "web", work / "src" / "clearcurate" / "web")
    run_cmd([sys.executable, "-m", "dvc", "init", "--no-scm", "-q"], work)
    shutil.copy(ROOT / ".dvc" / "config", work / ".dvc" / "config")
    scored = [{"id": str(i), "confidence": i / 10} for i in range(10)]
    outcome = {str(i): "kept" if i > 2 else "removed" for i in range(10)}
    write_json(work / "plots" / "confidence.json", confidence_histogram(scored, outcome))
    write_json(work / "plots" / "outcomes.json", outcome_counts([{"id": k, "outcome": v} for k, v in outcome.items()]))
    scores = [{"model": m, "score": s, "metric": "f1"} for m, s in (("base", 10), ("filtered", 30))]
    write_json(work / "metrics" / "test_scores.json", scores)
    run_cmd([sys.executable, "-m", "dvc", "plots", "show"], work)
    return work / "dvc_plots" / "index.html"


@pytest.fixture(scope="module")
def data_docs(tmp_path_factory) -> Path:
    """Data Docs of one passing and one failing validation."""
    reports = tmp_path_factory.mktemp("validation")
    cfg = ValidateConfig(strict=False)
    frame = pd.DataFrame({"id": ["a", "b", "b"], "prompt": ["Q1?", "Q2?", ""], "response": ["yes", "no", "x"]})
    validate("good", frame.iloc[:2], instruction_suite(cfg), cfg, reports)
    validate("bad", frame, instruction_suite(cfg), cfg, reports)
    return reports / "docs"


def test_dvc_plots_page_loads_the_vendored_vega_only(plots_page: Path) -> None:
    assert remote_loads(plots_page) == []
    scripts = _local_files(plots_page)
    assert [p.name for p in scripts] == ["vega.min.js", "vega-lite.min.js", "vega-embed.min.js"]
    assert all(p.is_file() for p in scripts)


def test_data_docs_pages_and_styles_load_local_copies_only(data_docs: Path) -> None:
    pages = [*data_docs.rglob("*.html"), *data_docs.glob("*/static/styles/*.css")]
    assert len(pages) >= 8  # per validation: index, expectations, validation page, two stylesheets
    assert {p: remote_loads(p) for p in pages if remote_loads(p)} == {}
    # GE's validation pages link the favicon one folder short of static/: a missing icon, not a network load
    missing = [(p, f) for p in pages for f in _local_files(p) if not f.is_file() and f.name != "favicon.ico"]
    assert missing == []


@needs_chromium
def test_plots_draw_offline_and_the_cdn_page_does_not(plots_page: Path, tmp_path: Path) -> None:
    assert offline_reports.vega_views(offline_reports.render(plots_page)) == 3
    from dvc_render.html import PAGE_HTML

    cdn = offline_reports.dvc_plots_page(plots_page.parents[1], tmp_path / "cdn", PAGE_HTML)
    assert remote_loads(cdn)  # DVC's own page needs the network ...
    assert offline_reports.vega_views(offline_reports.render(cdn)) == 0  # ... which really is off here


@needs_chromium
def test_data_docs_tables_are_initialised_offline(data_docs: Path) -> None:
    for page in (data_docs / "bad" / "index.html", next((data_docs / "bad" / "validations").rglob("*.html"))):
        dom = offline_reports.render(page)
        assert offline_reports.BOOTSTRAP_TABLE.search(dom), f"{page}: jQuery / bootstrap-table did not run"


def test_chromium_missing_is_a_clear_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(FileNotFoundError, match="apt-get install chromium"):
        offline_reports.render(tmp_path / "page.html")
