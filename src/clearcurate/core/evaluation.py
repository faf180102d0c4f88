"""Task metrics for fine-tuned models and detection metrics for the scorer."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

import numpy as np
from sklearn.metrics import roc_auc_score

from clearcurate.core.confidence import exact_match, normalize_answer, token_f1


def squad_per_question(predictions: Sequence[str], references: Sequence[Sequence[str]]) -> dict[str, list[float]]:
    """Per question: SQuAD exact match and F1 (0-1), each the max over the question's reference answers."""
    if len(predictions) != len(references) or not predictions:
        raise ValueError("need one non-empty list of references per prediction")
    return {
        "exact_match": [max(exact_match(p, r) for r in refs) for p, refs in zip(predictions, references)],
        "f1": [max(token_f1(p, r) for r in refs) for p, refs in zip(predictions, references)],
    }


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


def final_number_per_question(predictions: Sequence[str], references: Sequence[Sequence[str]]) -> dict[str, list[float]]:
    """Per question: 1.0 when the final number matches a reference's (an unambiguous check), else 0.0."""
    if len(predictions) != len(references) or not predictions:
        raise ValueError("need one non-empty list of references per prediction")
    return {"exact_match": [float(final_number(p) is not None and final_number(p) in {final_number(r) for r in refs})
                            for p, refs in zip(predictions, references)]}


def paired_bootstrap(
    method: np.ndarray, reference: np.ndarray, n_boot: int = 2000, seed: int = 0, level: float = 0.95
) -> tuple[float, float, float]:
    """Mean difference (method - reference) and its bootstrap CI, resampling seeds and test questions.

    Both arrays are (seeds, questions) of per-question scores from models trained with the same
    seeds and evaluated on the same questions, so the difference is paired: question difficulty
    and seed luck cancel. Each resample draws seeds and questions with replacement (a two-way
    bootstrap), so the interval reflects both training noise and the finite test set.
    """
    a, b = np.asarray(method, dtype=float), np.asarray(reference, dtype=float)
    if a.shape != b.shape or a.ndim != 2 or a.size == 0:
        raise ValueError(f"need two (seeds, questions) arrays of the same shape, got {a.shape} and {b.shape}")
    diff = a - b
    rng = np.random.default_rng(seed)
    n_seeds, n_questions = diff.shape
    stats = np.empty(n_boot)
    for i in range(n_boot):
        s = rng.integers(0, n_seeds, n_seeds)
        q = rng.integers(0, n_questions, n_questions)
        stats[i] = diff[np.ix_(s, q)].mean()
    tail = (1 - level) / 2
    return float(diff.mean()), float(np.quantile(stats, tail)), float(np.quantile(stats, 1 - tail))


def verdict(low: float, high: float) -> str:
    """Plain words for a confidence interval of a difference."""
    if low > 0:
        return "better"
    if high < 0:
        return "worse"
    return "no detectable change"


def detection_scores(
    confidence: Mapping[str, float], noisy: Mapping[str, bool], removed: set[str]
) -> dict[str, float | None]:
    """How well confidence separates clean from noisy rows, and how good the filter's cut was.

    AUROC treats clean rows as positives (higher confidence = cleaner); precision and recall are
    of the removed set against the truly noisy rows. A metric the labels cannot define (AUROC
    without both classes, precision with nothing removed, recall with nothing noisy) is None,
    never a made-up 0.
    """
    ids = [i for i in confidence if i in noisy]
    y_clean = np.array([0 if noisy[i] else 1 for i in ids])
    scores = np.array([confidence[i] for i in ids])
    out: dict[str, float | None] = {"rows": float(len(ids)), "noisy_rows": float(len(ids) - y_clean.sum())}
    out["auroc"] = float(roc_auc_score(y_clean, scores)) if 0 < y_clean.sum() < len(ids) else None
    flagged = {i for i in ids if i in removed}
    bad = {i for i in ids if noisy[i]}
    out["filter_precision"] = len(flagged & bad) / len(flagged) if flagged else None
    out["filter_recall"] = len(flagged & bad) / len(bad) if bad else None
    return out


def freeform_per_question(predictions: Sequence[str], references: Sequence[str]) -> dict[str, list[float]]:
    """Per question (0-1): token F1 of the generated answer with the reference response.

    Free-form answers have no exact match to speak of; overlap with the reference is the common
    text metric for them (SQuAD-normalised tokens, as `token_f1`). The name says what it is, so
    nobody reads it as accuracy.
    """
    if len(predictions) != len(references) or not predictions:
        raise ValueError("need one reference per prediction")
    return {"token_f1_vs_reference": [token_f1(p, r) for p, r in zip(predictions, references)]}


def heldout_nll(logprobs: Sequence[tuple[float, int]]) -> list[float]:
    """Per reference response: negative log-likelihood per token under the model (lower is better).

    `logprobs` are (log p(reference + end-of-turn | prompt), tokens) pairs, as
    `LocalLM.continuation_logprobs` returns them. This is held-out loss, what free-form
    fine-tuning is judged by when there is no single right answer.
    """
    if not logprobs or any(n <= 0 for _, n in logprobs):
        raise ValueError("need at least one reference, each with at least one token")
    return [-lp / n for lp, n in logprobs]


def heldout_scores(nll_per_row: Sequence[float]) -> dict[str, float]:
    """Mean per-token NLL over the test rows and its perplexity."""
    mean = float(np.mean(nll_per_row))
    return {"heldout_nll_per_token": mean, "heldout_perplexity": float(np.exp(mean))}


HELDOUT = "heldout_nll_per_token"  # per question: the reference's NLL per token; lower is better


def per_question_scores(texts: Sequence[str], test: Sequence[Mapping], nll: Sequence[float] | None) -> dict[str, list[float]]:
    """One model's per-question test scores (0-1, or nats), what `model_scores` averages and a paired bootstrap resamples.

    Rows that all have `answers` get SQuAD exact match and F1, unless every reference response is a worked
    math solution (GSM8K's ``#### 42``): then exact match of the final number, since the steps may be worded
    any way. Other rows (free-form data) get token F1 with the reference response. With `nll` (per row),
    held-out loss too.
    """
    if all(r.get("answers") for r in test):
        metric = final_number_per_question if all("####" in r.get("response", "") for r in test) else squad_per_question
        scores = metric(texts, [r["answers"] for r in test])
    else:
        scores = freeform_per_question(texts, [r["response"] for r in test])
    return {**scores, **({HELDOUT: list(nll)} if nll is not None else {})}


def model_scores(texts: Sequence[str], test: Sequence[Mapping], nll: Sequence[float] | None) -> dict[str, float]:
    """One model's test metrics: the mean of each `per_question_scores` in percent, and held-out loss with its perplexity."""
    per_question = per_question_scores(texts, test, nll)
    scores = {k: 100.0 * float(np.mean(v)) for k, v in per_question.items() if k != HELDOUT}
    return {**scores, **(heldout_scores(per_question[HELDOUT]) if HELDOUT in per_question else {})}


def answer_key(text: str) -> str:
    """What an answer commits to, for telling whether two answers agree.

    A worked math solution (one with ``####``) commits to its final number, whatever the
    wording of its steps; any other answer to its SQuAD-normalised text.
    """
    if "####" in text:
        number = final_number(text)
        return f"#{number}" if number is not None else normalize_answer(text)
    return normalize_answer(text)


def same_answer(a: str, b: str) -> bool:
    """Whether two answers agree (see `answer_key`): the check for correction precision."""
    return answer_key(a) == answer_key(b)


def correction_scores(decisions: Sequence[Mapping], labels: Mapping[str, Mapping]) -> dict[str, float | None]:
    """How good Auto-Correct's replacements were, against known clean responses.

    `decisions`: one per row given to Auto-Correct, with `id`, `outcome` and `new`; `labels`:
    `noisy` and `clean_response` by id. A replacement is right when it gives the clean
    response's answer (`same_answer`); it damages a clean row when it changes that row's answer.
    """
    given = [d for d in decisions if d["id"] in labels]
    replaced = [d for d in given if d["outcome"] == "corrected"]
    right = [d for d in replaced if same_answer(d["new"], labels[d["id"]]["clean_response"])]
    noisy_given = sum(bool(labels[d["id"]]["noisy"]) for d in given)
    clean_given = len(given) - noisy_given
    right_ids = {d["id"] for d in right}
    damaged = sum(not labels[d["id"]]["noisy"] and d["id"] not in right_ids for d in replaced)
    return {
        "given": len(given),
        "given_noisy": noisy_given,
        "replaced": len(replaced),
        "replaced_matching_clean": len(right),
        "correction_precision": len(right) / len(replaced) if replaced else None,
        "noisy_repaired": sum(bool(labels[d["id"]]["noisy"]) for d in right),
        "noisy_repaired_share": sum(bool(labels[d["id"]]["noisy"]) for d in right) / noisy_given if noisy_given else None,
        "clean_damaged": damaged,
        "clean_damaged_share": damaged / clean_given if clean_given else None,
    }


# What `evaluate` compares, each pair as (model, reference): the primary endpoints of the benchmark, on the user's own test set.
COMPARISONS = (("filtered", "baseline"), ("corrected", "filtered"))
CI_LEVEL = 0.95


def _in_units(metric: str, value: float) -> float:
    """Per-question scores are 0-1 and reported in percent; held-out loss is in nats."""
    return value if metric == HELDOUT else 100.0 * value


def with_uncertainty(per_question: Mapping[str, Sequence[float]], seed: int = 0) -> dict[str, float]:
    """One model's metrics as `model_scores` gives them, plus n and each mean's 95% bootstrap CI over test
    questions (`<metric>_ci_low` / `_ci_high`): 90 questions make one of them 1.1 points, which a bare mean hides."""
    rng = np.random.default_rng(seed)
    n = len(next(iter(per_question.values())))
    draws = rng.integers(0, n, (2000, n))
    out: dict[str, float] = {"n": float(n)}
    for metric, values in per_question.items():
        v = np.asarray(values, dtype=float)
        means = v[draws].mean(axis=1)
        tail = (1 - CI_LEVEL) / 2
        out[metric] = _in_units(metric, float(v.mean()))
        out[f"{metric}_ci_low"] = _in_units(metric, float(np.quantile(means, tail)))
        out[f"{metric}_ci_high"] = _in_units(metric, float(np.quantile(means, 1 - tail)))
        if metric == HELDOUT:  # exp is monotone, so the loss's percentile interval gives perplexity's exactly
            for end in ("", "_ci_low", "_ci_high"):
                out[f"heldout_perplexity{end}"] = float(np.exp(out[f"{HELDOUT}{end}"]))
    return out


def differences(model: Mapping[str, Sequence[float]], reference: Mapping[str, Sequence[float]], seed: int = 0) -> dict[str, float]:
    """`model` minus `reference` on the same test questions, per metric, with its paired bootstrap 95% CI
    (`paired_bootstrap` with one training seed: question difficulty cancels). For held-out loss lower is
    better, so a negative difference is the improvement."""
    out: dict[str, float] = {"n": float(len(next(iter(model.values()))))}
    for metric in model:
        mean, low, high = paired_bootstrap(np.asarray([model[metric]]), np.asarray([reference[metric]]), seed=seed, level=CI_LEVEL)
        out[metric], out[f"{metric}_ci_low"], out[f"{metric}_ci_high"] = (_in_units(metric, x) for x in (mean, low, high))
    return out
