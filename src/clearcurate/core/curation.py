"""Curation decisions (Auto-Filter, Auto-Correct) as pure functions of scores and thresholds.

Every input row ends in exactly one outcome with a reason, so nothing is silently lost.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from clearcurate.config import AUTO, FilterConfig
from clearcurate.core.defects import correctable, describe, response_defects
from clearcurate.core.outcomes import Outcome
from clearcurate.core.records import Record


@dataclass(frozen=True)
class Threshold:
    """The effective gamma and how it was chosen (the noisy-share estimate, when automatic)."""

    gamma: float
    method: str
    estimated_noise_share: float | None = None


def estimate_noise_share(statistic: Sequence[float], max_share: float = 0.5) -> float:
    """The share of noisy rows, estimated from a per-row statistic alone (no labels).

    A two-component Gaussian mixture on the statistic (higher = cleaner) against one component:
    if one component explains the rows as well (BIC), or the two overlap into one skewed
    population (Ashman's D < 1), nothing looks noisy and the estimate is 0. Otherwise it is the
    weight of the low component, capped at `max_share` (noise is the minority). The pipeline
    passes the likelihood log-ratio (log p(response) - log p(best sample)), not the confidence,
    whose capped components make even clean data two-humped (docs/curation.md).
    """
    from sklearn.mixture import GaussianMixture

    z = np.asarray(statistic, dtype=float)
    if z.size < 10:
        raise ValueError(f"filter.quantile: auto needs at least 10 scored rows, got {z.size}")
    if not np.all(np.isfinite(z)):
        raise ValueError("filter.quantile: auto needs finite scores")
    if np.ptp(z) < 1e-9:
        return 0.0
    one = GaussianMixture(1, random_state=0).fit(z[:, None])
    two = GaussianMixture(2, random_state=0, n_init=5).fit(z[:, None])
    means = two.means_.ravel()
    separation = np.sqrt(2.0) * abs(means[0] - means[1]) / np.sqrt(two.covariances_.ravel().sum())
    if two.bic(z[:, None]) >= one.bic(z[:, None]) or separation < 1.0:
        return 0.0
    return float(min(two.weights_[int(np.argmin(means))], max_share))


def threshold(confidences: Sequence[float], cfg: FilterConfig, statistic: Sequence[float] | None = None) -> Threshold:
    """The effective gamma: fixed, a quantile of this dataset's confidences (the paper uses the
    median), or (`quantile: auto`) the quantile at the noisy share estimated from `statistic`
    (default: the logit of the confidences)."""
    if cfg.quantile is None:
        return Threshold(cfg.gamma, "fixed gamma")
    scores = np.asarray(confidences, dtype=float)
    if scores.size == 0:
        raise ValueError("cannot take a quantile of no scores")
    if cfg.quantile == AUTO:
        if statistic is None:
            clipped = np.clip(scores, 1e-3, 1 - 1e-3)
            statistic = np.log(clipped / (1 - clipped))
        share = estimate_noise_share(statistic, cfg.max_share)
        # Remove the estimated share, lowest confidence first: gamma is the next score above them.
        n_remove = round(share * scores.size)
        if n_remove == 0:
            gamma = float(scores.min())
        else:
            gamma = float(np.sort(scores)[n_remove]) if n_remove < scores.size else float("inf")
        return Threshold(gamma, "auto", share)
    return Threshold(float(np.quantile(scores, cfg.quantile)), f"quantile {cfg.quantile}")


def row_statistic(scored: Mapping) -> float | None:
    """One row's part of `auto_statistic`: its likelihood log-ratio, or None when the row lacks it."""
    if "response_logprob" not in scored or "best_sample_logprob" not in scored:
        return None
    return float(scored["response_logprob"]) - float(scored["best_sample_logprob"])


def auto_statistic(scored: Sequence[dict]) -> list[float] | None:
    """What `quantile: auto` estimates the noisy share from: the likelihood log-ratio of every row
    (crossfit), or None (then the confidence) when a row lacks it."""
    stats = [row_statistic(r) for r in scored]
    if not stats or any(x is None for x in stats):
        return None
    return stats


@dataclass(frozen=True)
class ScoreColumns:
    """What Auto-Filter needs of `score`'s records, in arrays with an index by id: each row's
    confidence and `row_statistic`, and the defects of the rows that have any. A million records of
    about 1.5 kB each become about 100 bytes a row."""

    index: dict[str, int]
    confidence: np.ndarray
    statistic: np.ndarray  # NaN where `has_statistic` is False
    has_statistic: np.ndarray
    defects: dict[int, list[dict[str, str]]]  # by position: only rows with a defect (clearcurate.core.defects)

    @classmethod
    def collect(cls, scored: Iterable[Mapping]) -> ScoreColumns:
        """From score records as they stream past; a repeated id keeps its last record's values."""
        index: dict[str, int] = {}
        confidence, statistic, has = array("d"), array("d"), array("b")
        defects: dict[int, list[dict[str, str]]] = {}
        for record in scored:
            stat = row_statistic(record)
            values = (float(record["confidence"]), math.nan if stat is None else stat, stat is not None)
            i = index.setdefault(record["id"], len(confidence))
            if i == len(confidence):
                confidence.append(values[0])
                statistic.append(values[1])
                has.append(values[2])
            else:
                confidence[i], statistic[i], has[i] = values
            if found := record.get("defects"):
                defects[i] = list(found)
            else:
                defects.pop(i, None)
        return cls(index, np.frombuffer(confidence, dtype=float), np.frombuffer(statistic, dtype=float),
                   np.frombuffer(has, dtype=np.int8).astype(bool), defects)

    def align(self, ids: Sequence[str]) -> tuple[np.ndarray, np.ndarray | None, list[str]]:
        """Confidences in the order of `ids`, the `auto_statistic` (None unless every one of them has it)
        and the ids that have no score."""
        where = np.fromiter((self.index.get(i, -1) for i in ids), dtype=np.int64, count=len(ids))
        missing = [ids[k] for k in np.flatnonzero(where < 0)]
        found = np.where(where < 0, 0, where)
        statistic = self.statistic[found] if len(ids) and self.has_statistic[found].all() else None
        return self.confidence[found], statistic, missing

    def defects_of(self, ids: Sequence[str]) -> dict[int, list[dict[str, str]]]:
        """The defects of the rows of `ids` that have any, by position in `ids`."""
        return {k: self.defects[i] for k, row_id in enumerate(ids) if (i := self.index.get(row_id, -1)) in self.defects}


def keep_mask(confidences: np.ndarray, gamma: float, defective: Collection[int] = ()) -> np.ndarray:
    """Which rows Auto-Filter keeps: confidence >= gamma (as `split_by_threshold` decides), and no
    defect (`defective`: positions of rows with one, removed whatever their score), for confidences
    held in one array (the filter stage's million rows) rather than a mapping."""
    keep = np.asarray(confidences, dtype=float) >= gamma
    if len(defective):
        keep[np.fromiter(defective, dtype=np.int64)] = False
    return keep


def removal_reason(confidence: float, gamma: float, defects: Sequence[Mapping[str, str]] = ()) -> str:
    """Why Auto-Filter removed a row: its defects (clearcurate.core.defects), else its score below gamma."""
    if defects:
        return describe(defects)
    return f"confidence {confidence:.4f} < gamma {gamma:.4f}"


# Response length bands (words) for the filter's removals: a length-fair scorer removes about the same share of
# each. On 300 Alpaca rows the filter removed 27 of 54 short answers (labels, numbers, names) and 7 of 124 long ones.
LENGTH_BANDS = ((1, 8), (9, 40), (41, None))
MIN_BAND_ROWS = 10  # fewer rows in a band say nothing about it
DOMINANT = (2.0, 0.15)  # a band's removed share at least twice the overall share and 15 points above it


def band_of(words: int) -> str:
    """The name of the band a response of `words` words falls in ("<= 8 words", "9-40 words", "> 40 words")."""
    for low, high in LENGTH_BANDS:
        if high is None:
            return f"> {low - 1} words"
        if words <= high:
            return f"<= {high} words" if low == 1 else f"{low}-{high} words"
    raise AssertionError("the last band is open")


class LengthBands:
    """Rows and removals per response-length band, counted as the filter writes each row (streaming)."""

    def __init__(self) -> None:
        self.rows: dict[str, int] = {band_of(high or low): 0 for low, high in LENGTH_BANDS}
        self.removed = dict.fromkeys(self.rows, 0)

    def add(self, response: str, removed: bool) -> None:
        band = band_of(len(response.split()))
        self.rows[band] += 1
        self.removed[band] += removed

    def summary(self) -> dict[str, dict[str, float | None]]:
        return {band: {"rows": n, "removed": self.removed[band], "removed_share": self.removed[band] / n if n else None}
                for band, n in self.rows.items()}

    def warning(self) -> str | None:
        """A band whose removed share dominates (`DOMINANT`): the scores may follow length there, not content."""
        total = sum(self.rows.values())
        overall = sum(self.removed.values()) / total if total else 0.0
        for band, n in self.rows.items():
            share = self.removed[band] / n if n else 0.0
            if n >= MIN_BAND_ROWS and share >= DOMINANT[0] * overall and share >= overall + DOMINANT[1]:
                return (f"the filter removed {share:.0%} of responses of {band} ({self.removed[band]} of {n}) against "
                        f"{overall:.0%} overall. Right if your bad rows have that length (the demo's noisy responses are "
                        "whole sentences where the answers are short spans); wrong if the scores follow length rather than "
                        "content: read a few of them in data/filtered/removed.jsonl (docs/curation.md#removals-by-length)")
        return None


def split_by_threshold(confidences: Mapping[str, float], gamma: float) -> tuple[list[str], list[str]]:
    """Ids kept (confidence >= gamma) and removed (below), in input order."""
    kept = [i for i, c in confidences.items() if c >= gamma]
    removed = [i for i, c in confidences.items() if c < gamma]
    return kept, removed


@dataclass(frozen=True)
class AgreementVerdict:
    """Auto-Correct evidence from k answers of a model that never trained on the row."""

    candidate: str | None  # the agreed answer; None when it is the original's answer, or no sample is complete
    agreement: float  # share of the k samples that give the candidate's answer
    preference: float  # p(candidate) / (p(candidate) + p(original)) under the same model
    confidence: float  # agreement * preference: compared with eta
    complete: int = 0  # samples that could be the candidate: finished within their budget, non-empty

    def reason(self, eta: float, original: str) -> str:
        """Why the row was or was not corrected, true to the numbers: "the model agrees with the original"
        only when its samples do, not when none of them was a complete answer."""
        if self.candidate is None and not self.complete:
            return NO_COMPLETE_SAMPLE
        return correction_reason(self.confidence, eta, self.candidate, original)


NO_COMPLETE_SAMPLE = "no complete sample to agree on (each was cut off at its token budget, or empty)"


def agreement_verdict(
    samples: Sequence[str],
    sample_logprobs: Sequence[float | None],
    complete: Sequence[bool],
    original: str,
    original_logprob: float,
) -> AgreementVerdict:
    """Confident-learning style correction: replace a row with the answer a held-out model agrees on.

    The candidate is the most likely sample among those giving the most common answer
    (`evaluation.answer_key`: final number for math, normalised text otherwise). Samples that
    were cut off (`complete` False) or are empty count against agreement but never become the
    candidate. The model's own likelihood then compares candidate and original head to head,
    with no prompt and so no position bias. Confidence is 0 when the agreed answer is the
    original's: the model confirms the row.
    """
    from clearcurate.core.evaluation import answer_key

    if not (len(samples) == len(sample_logprobs) == len(complete)) or not samples:
        raise ValueError("need the same non-zero number of samples, log-probabilities and completeness flags")
    valid = [
        (answer_key(t), lp, t)
        for t, lp, done in zip(samples, sample_logprobs, complete)
        if done and t.strip() and lp is not None and np.isfinite(lp)
    ]
    if not valid:
        return AgreementVerdict(None, 0.0, 0.0, 0.0, 0)
    counts: dict[str, int] = {}
    for key, _, _ in valid:
        counts[key] = counts.get(key, 0) + 1
    best_lp = {key: max(lp for k, lp, _ in valid if k == key) for key in counts}
    top = max(counts, key=lambda key: (counts[key], best_lp[key]))
    candidate = max((v for v in valid if v[0] == top), key=lambda v: v[1])[2]
    agreement = counts[top] / len(samples)
    if top == answer_key(original):
        return AgreementVerdict(None, agreement, 0.0, 0.0, len(valid))
    preference = float(1.0 / (1.0 + np.exp(original_logprob - best_lp[top])))
    return AgreementVerdict(candidate, agreement, preference, agreement * preference, len(valid))


def pairwise_preference(p_first: float, p_second: float) -> float:
    """P(candidate better) with position bias removed: the mean over both presentation orders.

    `p_first` is the judge's P(candidate) with the candidate shown as (A), `p_second` with it
    shown as (B) (LLM-as-judge calibration, Wang et al. 2023, arXiv 2305.17926).
    """
    return (p_first + p_second) / 2.0


def refusal(candidate_confidence: float, eta: float, candidate: str | None, original: str) -> str | None:
    """Why the candidate must not replace the original, or None when it may: Auto-Correct replaces
    only with a different, non-empty answer that passes the defect checks of a response alone (its
    calculations hold, it is no refusal or placeholder...), when confident (> eta)."""
    if candidate is None:
        return "the held-out model agrees with the original answer"
    if not candidate.strip():
        return "candidate empty"
    if candidate.strip() == original.strip():
        return "candidate equals original"
    if found := response_defects(candidate):
        return f"candidate has a defect: {describe(found)}"
    if candidate_confidence <= eta:
        return f"candidate confidence {candidate_confidence:.3f} <= eta {eta}"
    return None


def should_replace(candidate_confidence: float, eta: float, candidate: str | None, original: str) -> bool:
    """Auto-Correct's decision (see `refusal`)."""
    return refusal(candidate_confidence, eta, candidate, original) is None


def correction_reason(candidate_confidence: float, eta: float, candidate: str | None, original: str) -> str:
    """Why a low-confidence row was or was not corrected (written next to every outcome)."""
    refused = refusal(candidate_confidence, eta, candidate, original)
    return refused or f"candidate preferred with confidence {candidate_confidence:.3f} > eta {eta}"


def redecide(decision: Record, eta: float) -> Record:
    """A stored Auto-Correct decision taken again at another `eta` from its evidence.

    The evidence (the candidate, its confidence, the original) does not depend on eta, so it is
    recorded once and any eta is applied to it later: changing eta re-decides, it does not resample.
    A row that failed, or was refused for a reason no eta changes, keeps its stored decision and reason.
    """
    if "error" in decision or decision.get("judge_unparsed") or \
            refusal(decision["confidence"], -math.inf, decision["new"], decision["old"]) is not None:
        return {**decision, "outcome": Outcome(decision["outcome"])}
    replace = should_replace(decision["confidence"], eta, decision["new"], decision["old"])
    return {**decision, "outcome": Outcome.CORRECTED if replace else Outcome.REMOVED,
            "reason": correction_reason(decision["confidence"], eta, decision["new"], decision["old"])}


PROMPT_AT_FAULT = "Auto-Correct does not rewrite a row whose prompt is at fault"


def uncorrectable(row: Record) -> Record | None:
    """The decision for a removed row no new response can fix (a defect of its prompt: clearcurate.core.defects),
    made without model work; None when Auto-Correct may try."""
    if correctable(row.get("defects", [])):
        return None
    return {"id": row["id"], "outcome": Outcome.REMOVED, "reason": PROMPT_AT_FAULT, "confidence": 0.0,
            "old": row["response"], "new": row["response"]}
