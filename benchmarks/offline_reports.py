"""Do the reports render with no network? `dvc plots show` and the Data Docs in headless Chromium, offline.

Renders, in a project where the pipeline has run: the page `dvc plots show` writes (with the
project's template, .dvc/config) and every Data Docs page under reports/validation, each with
Chromium's network cut off (a network namespace where `unshare -n` works, and always a dead proxy
and a resolver that resolves nothing). Saves a screenshot of each and checks the DOM after
rendering: the plots page must hold one drawn vega view per plot (a <canvas class="marks">), a
Data Docs page its tables initialised by bootstrap-table (jQuery, Bootstrap and bootstrap-table all
ran). As a control, the same plots rendered with DVC's default page (vega from a CDN) must draw
nothing: that shows the network really was off.

    .venv/bin/python benchmarks/offline_reports.py --project /path/to/project-after-dvc-repro

Needs `chromium` (Debian: apt-get install chromium). Writes <out>/*.png and <out>/results.json (pages relative to the project).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from clearcurate.data.reports import remote_loads

log = logging.getLogger("offline_reports")
OUT = Path(__file__).resolve().parent / "offline_reports"
NO_NETWORK = ["--proxy-server=127.0.0.1:9", "--host-resolver-rules=MAP * ~NOTFOUND"]
VEGA_VIEW = re.compile(r'<(canvas|svg)[^>]*class="marks"')
BOOTSTRAP_TABLE = re.compile(r'class="bootstrap-table')


def _chromium(*args: str) -> str:
    """Run headless Chromium with the network off; its stdout (the DOM with --dump-dom)."""
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        raise FileNotFoundError("chromium is not on PATH (Debian: apt-get install chromium)")
    isolate = ["unshare", "-n"] if shutil.which("unshare") and subprocess.run(["unshare", "-n", "true"]).returncode == 0 else []
    cmd = [*isolate, exe, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run", *NO_NETWORK,
           "--virtual-time-budget=15000", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=True).stdout


def render(page: Path, screenshot: Path | None = None, size: str = "1200,900") -> str:
    """The DOM of `page` after its scripts ran, offline; with `screenshot`, a PNG of it too."""
    if screenshot is not None:
        screenshot.parent.mkdir(parents=True, exist_ok=True)
        _chromium(f"--window-size={size}", f"--screenshot={screenshot}", page.resolve().as_uri())
    return _chromium("--dump-dom", page.resolve().as_uri())


def vega_views(dom: str) -> int:
    """How many vega views drew their marks."""
    return len(VEGA_VIEW.findall(dom))


def dvc_plots_page(project: Path, out: Path, template: str | None = None) -> Path:
    """Run `dvc plots show` in `project` into `out`; `template`: another page template (text)."""
    cmd = [sys.executable, "-m", "dvc", "plots", "show", "-o", str(out)]
    with tempfile.TemporaryDirectory() as tmp:
        if template is not None:
            (Path(tmp) / "page.html").write_text(template, encoding="utf-8")
            cmd += ["--html-template", str(Path(tmp) / "page.html")]
        subprocess.run(cmd, cwd=project, capture_output=True, text=True, check=True)
    return out / "index.html"


def _check(name: str, page: Path, out: Path, expect: str, project: Path) -> dict:
    """Render one page offline; what it loads from the network, and what its scripts drew."""
    dom = render(page, out / f"{name}.png", size="1200,1000" if expect == "vega" else "1200,1400")
    shown = page.relative_to(project) if page.is_relative_to(project) else page
    result = {"page": str(shown), "screenshot": f"{name}.png", "remote_loads": remote_loads(page),
              "vega_views": vega_views(dom), "bootstrap_tables": len(BOOTSTRAP_TABLE.findall(dom))}
    log.info("%s: %d vega views, %d bootstrap tables, %d remote loads", name, result["vega_views"],
             result["bootstrap_tables"], len(result["remote_loads"]))
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--project", type=Path, required=True, help="a clearcurate project after `dvc repro`")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    from dvc_render.html import PAGE_HTML  # DVC's own page: vega, vega-lite and vega-embed from a CDN

    args.out.mkdir(parents=True, exist_ok=True)
    results = {"plots": _check("dvc_plots", dvc_plots_page(args.project, args.project / "dvc_plots"), args.out, "vega", args.project)}
    with tempfile.TemporaryDirectory() as tmp:
        control = _check("control_dvc_default_page", dvc_plots_page(args.project, Path(tmp), PAGE_HTML), args.out, "vega", args.project)
    results["control_cdn_page"] = {**control, "page": "dvc plots show with DVC's default page (CDN scripts)"}
    docs = sorted((args.project / "reports" / "validation").glob("*/docs/*/index.html"))
    for index in docs:
        stage, name = index.parts[-4], index.parts[-2]
        results[f"docs_{name}_index"] = _check(f"docs_{name}_index", index, args.out, "docs", args.project)
        for page in sorted((index.parent / "validations").rglob("*.html")):
            results[f"docs_{name}_validation"] = _check(f"docs_{name}_validation", page, args.out, "docs", args.project)
        log.info("stage %s: Data Docs %s rendered", stage, name)
    (args.out / "results.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    failed = [k for k, r in results.items() if k != "control_cdn_page" and (
        r["remote_loads"] or (k == "plots" and r["vega_views"] < 3) or (k.startswith("docs") and not r["bootstrap_tables"]))]
    if results["control_cdn_page"]["vega_views"]:
        failed.append("control_cdn_page drew charts: the network was not off")
    if not docs:
        failed.append(f"no Data Docs under {args.project / 'reports/validation'}")
    if failed:
        raise SystemExit(f"offline rendering failed: {', '.join(failed)}")
    log.info("all %d pages rendered offline; screenshots in %s", len(results), os.path.relpath(args.out))


if __name__ == "__main__":
    main()
