"""Task metrics for fine-tuned models and detection metrics for the scorer."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

import numpy as np
from sklearn.metrics import roc_auc_score

from clearcurate.confidence import exact_match, token_f1


def squad_scores(predictions: Sequence[str], references: Sequence[Sequence[str]]) -> dict[str, float]:
    """SQuAD exact match and F1 in percent, each the max over a question's reference answers."""
    if len(predictions) != len(references) or not predictions:
        raise ValueError("need one non-empty list of references per prediction")
    em = [max(exact_match(p, r) for r in refs) for p, refs in zip(predictions, references)]
    f1 = [max(token_f1(p, r) for r in refs) for p, refs in zip(predictions, references)]
    return {"exact_match": 100.0 * float(np.mean(em)), "f1": 100.0 * float(np.mean(f1))}


_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?")


def final_number(text: str) -> str | None:
    """The answer a math solution commits to: the number after the last ``####``, else its last number."""
    tail = text.rsplit("####", 1)[1] if "####" in text else text
    numbers = _NUMBER.findall(tail)
    if not numbers:
        return None
    value = numbers[0] if "####" in text else numbers[-1]
    value = value.replace(",", "")
    return value.rstrip("0").rstrip(".") if "." in value else value


def final_number_scores(predictions: Sequence[str], references: Sequence[Sequence[str]]) -> dict[str, float]:
    """GSM8K accuracy in percent: exact match of the final number (an unambiguous check)."""
    if len(predictions) != len(references) or not predictions:
        raise ValueError("need one non-empty list of references per prediction")
    hits = [final_number(p) is not None and final_number(p) in {final_number(r) for r in refs}
            for p, refs in zip(predictions, references)]
    return {"exact_match": 100.0 * float(np.mean(hits))}


def detection_scores(
    confidence: Mapping[str, float], noisy: Mapping[str, bool], removed: set[str]
) -> dict[str, float]:
    """How well confidence separates clean from noisy rows, and how good the filter's cut was.

    AUROC treats clean rows as positives (higher confidence = cleaner); precision and recall are
    of the removed set against the truly noisy rows.
    """
    ids = [i for i in confidence if i in noisy]
    y_clean = np.array([0 if noisy[i] else 1 for i in ids])
    scores = np.array([confidence[i] for i in ids])
    out: dict[str, float] = {"rows": float(len(ids)), "noisy_rows": float(len(ids) - y_clean.sum())}
    if 0 < y_clean.sum() < len(ids):
        out["auroc"] = float(roc_auc_score(y_clean, scores))
    flagged = {i for i in ids if i in removed}
    bad = {i for i in ids if noisy[i]}
    out["filter_precision"] = len(flagged & bad) / len(flagged) if flagged else 0.0
    out["filter_recall"] = len(flagged & bad) / len(bad) if bad else 0.0
    return out
