"""BSDetector scoring math (Chen & Mueller 2024, Sec. 3), free of any model I/O.

Observed consistency O: o_j = alpha * sim(sample_j, response) + (1 - alpha) * exact_match, O = mean_j o_j.
Self-reflection certainty S: A (correct) = 1, B (incorrect) = 0, C (not sure) = 0.5, averaged over
the follow-up questions; with next-token probabilities this is the expected score.
Confidence: a weighted mean of the components; the paper's is beta * O + (1 - beta) * S.
"""

from __future__ import annotations

import math
import re
import statistics
import string
from collections import Counter
from collections.abc import Hashable, Mapping, Sequence

CHOICE_SCORES = {"A": 1.0, "B": 0.0, "C": 0.5}
# Components computed from sampled answers: with none of them weighted, nothing is sampled.
SAMPLED_COMPONENTS = ("consistency", "likelihood", "length")
# Components of the out-of-fold (cross-fit) model: with none of them weighted, no fold model is trained.
FOLD_COMPONENTS = (*SAMPLED_COMPONENTS, "relevance")
_ARTICLES = re.compile(r"\b(a|an|the)\b")
_ANSWER = re.compile(r"answer\s*:\s*", re.IGNORECASE)


def normalize_answer(text: str) -> str:
    """SQuAD's official normalisation: lower case, no punctuation, no articles, single spaces."""
    text = text.lower()
    text = "".join(ch for ch in text if ch not in set(string.punctuation))
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def exact_match(prediction: str, reference: str) -> float:
    return float(normalize_answer(prediction) == normalize_answer(reference))


def token_f1(prediction: str, reference: str) -> float:
    """SQuAD token-overlap F1 between normalised strings (1.0 when both are empty)."""
    pred, ref = normalize_answer(prediction).split(), normalize_answer(reference).split()
    if not pred or not ref:
        return float(pred == ref)
    common = sum((Counter(pred) & Counter(ref)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pred), common / len(ref)
    return 2 * precision * recall / (precision + recall)


def extract_answer(text: str) -> str:
    """The part after the last `answer:` of a chain-of-thought sample, else the whole text.

    The paper's template asks for "explanation: ..., answer: ..."; only the answer is compared
    with the dataset response.
    """
    matches = list(_ANSWER.finditer(text))
    if not matches:
        return text.strip()
    return text[matches[-1].end() :].split("\n")[0].strip()


def observed_consistency(similarities: Sequence[float], exact: Sequence[float], alpha: float) -> float:
    """O = mean_j (alpha * sim_j + (1 - alpha) * em_j); 0.0 when there are no samples."""
    if len(similarities) != len(exact):
        raise ValueError("similarities and exact matches must have the same length")
    if not similarities:
        return 0.0
    return sum(alpha * s + (1 - alpha) * e for s, e in zip(similarities, exact)) / len(similarities)


def reflection_certainty(choice_probs: Sequence[float]) -> float:
    """Expected score of one self-reflection answer from P(A), P(B), P(C)."""
    if len(choice_probs) != 3:
        raise ValueError("expected probabilities for the three choices A, B, C")
    total = sum(choice_probs)
    if total <= 0:
        raise ValueError("choice probabilities sum to zero")
    return sum(p * CHOICE_SCORES[c] for p, c in zip(choice_probs, "ABC")) / total


def likelihood_ratio(response_logprob: float, best_logprob: float, scale: float = 1.0) -> float:
    """exp(min(0, log p(response) - log p(model's best answer)) / scale), in (0, 1].

    1.0 when the response is at least as likely as anything the model produced itself; it
    decays with how many nats less likely the given response is. The pipeline passes per-token
    log-likelihoods (a rate, so a long response is not penalised for being long; see
    `token_rate`). `scale` spreads the values over [0, 1] so the component mixes with the others
    on a comparable scale; it does not change the ranking of rows by this component alone.
    """
    if scale <= 0:
        raise ValueError("likelihood scale must be positive")
    return math.exp(min(0.0, response_logprob - best_logprob) / scale)


def token_rate(logprob: float, n_tokens: int) -> float:
    """Log-likelihood per token: comparable between a long response and a short sample."""
    if n_tokens <= 0:
        raise ValueError("a log-likelihood rate needs at least one token")
    return logprob / n_tokens


def fluency(logprob: float, n_tokens: int, scale: float = 1.0) -> float:
    """exp(log-likelihood per token / scale), in (0, 1]: how natural the response reads to the base
    model after its prompt (Superfiltering's perplexity signal). Evasive templates, cut-off text
    and responses to another instruction read unnaturally whatever the samples say (issue 12)."""
    if scale <= 0:
        raise ValueError("fluency scale must be positive")
    return math.exp(min(0.0, token_rate(logprob, n_tokens)) / scale)


def length_agreement(response_tokens: int, sample_tokens: Sequence[int], scale: float = 1.0) -> float:
    """exp(-|log(response tokens / median sample tokens)| / scale), in (0, 1].

    Whether the response is as long as what a model that never saw it answers: 1.0 when it is,
    decaying as it is some factor longer (a paragraph sentence where a short span is due) or
    shorter (a response cut off midway). It compares lengths, so it does not favour short or long
    responses as such: on clean data the model's answers follow the data's own lengths.
    """
    if response_tokens <= 0 or not sample_tokens or min(sample_tokens) <= 0:
        raise ValueError("length agreement needs positive token counts and at least one sample")
    if scale <= 0:
        raise ValueError("length scale must be positive")
    return math.exp(-abs(math.log(response_tokens / statistics.median(sample_tokens))) / scale)


def relevance(conditional_logprob: float, alone_logprob: float, n_tokens: int, scale: float = 1.0) -> float:
    """How much the prompt explains the response: 1 - exp(-PMI per token / scale), in [0, 1).

    PMI per token = (log p(response | prompt) - log p(response)) / tokens, the log of IFD's
    inverse (Superfiltering). 0 when the prompt does not help predict the response at all (a
    response written for another prompt), approaching 1 as the prompt makes it ever more likely.
    Per token, so long and short responses are on one scale; `scale` (nats per token) spreads the
    values over [0, 1] so the component mixes with the others; it does not change its ranking.
    """
    if n_tokens <= 0:
        raise ValueError("relevance needs at least one response token")
    if scale <= 0:
        raise ValueError("relevance scale must be positive")
    return max(0.0, 1.0 - math.exp(-(conditional_logprob - alone_logprob) / n_tokens / scale))


def combine(components: Mapping[str, float], weights: Mapping[str, float]) -> float:
    """Weighted mean of the named components; weights need not sum to 1 but must not all be 0."""
    active = {k: w for k, w in weights.items() if w}
    if not active:
        raise ValueError("all confidence weights are zero")
    missing = [k for k in active if k not in components]
    if missing:
        raise ValueError(f"confidence weights name unknown components: {missing}")
    if any(w < 0 for w in active.values()):
        raise ValueError("confidence weights must be non-negative")
    return sum(components[k] * w for k, w in active.items()) / sum(active.values())


# Fewer rows than this cannot set a group's own length line; such groups are fitted together.
MIN_GROUP_ROWS = 10


def length_adjusted(
    values: Sequence[float], lengths: Sequence[int], groups: Sequence[Hashable] | None = None, *, spread: bool = False
) -> list[float]:
    """Where each value stands among the responses of its length, in (0, 1): the residual of a
    least-squares line of the values on log(length) over the rows scored together, standardised and
    put through the normal CDF (0.5: as expected at that length).

    Why: on free-form data the likelihood-type components drift with length (a long correct answer
    reads as less likely per token, and the prompt explains less of it), so any fixed weighting of
    them partly measures length (issue 12). The line is set by the data's clean majority; a defect
    (an evasive template, a cut-off or misplaced response) stands off it at any length.

    `groups` (one label per value, e.g. each row's source dataset): one line per group, since
    kinds of response follow different trends (worked solutions read as likelier per token than
    open answers of the same length). Groups of fewer than MIN_GROUP_ROWS rows share one line.

    `spread`: each residual is also divided by the residuals' typical size at its length (a second
    line, of |residual| on log(length)). A per-token rate over 3 tokens varies far more than one over
    300, so with one spread for all lengths short responses fill both tails, correct or not (issue 31:
    27 of 54 Alpaca rows of <= 8 tokens removed against 7 of 124 of > 40).
    """
    if len(values) != len(lengths) or (groups is not None and len(groups) != len(values)):
        raise ValueError("need one length per value (and one group, if groups are given)")
    if any(n < 1 for n in lengths):
        raise ValueError("lengths must be at least 1 token")
    if groups is None:
        return _against_length_line(values, lengths, spread)
    members: dict[Hashable, list[int]] = {}
    for i, g in enumerate(groups):
        members.setdefault(g, []).append(i)
    pooled = [i for idx in members.values() if len(idx) < MIN_GROUP_ROWS for i in idx]
    parts = [idx for idx in members.values() if len(idx) >= MIN_GROUP_ROWS] + ([sorted(pooled)] if pooled else [])
    out = [0.5] * len(values)
    for idx in parts:
        for i, v in zip(idx, _against_length_line([values[i] for i in idx], [lengths[i] for i in idx], spread)):
            out[i] = v
    return out


def _residuals(x: Sequence[float], y: Sequence[float]) -> list[float]:
    """y less its least-squares line on x (less its mean where x does not vary)."""
    n = len(x)
    mx, my = sum(x) / n, sum(y) / n
    sxx = sum((a - mx) ** 2 for a in x)
    slope = sum((a - mx) * (b - my) for a, b in zip(x, y)) / sxx if sxx > 0 else 0.0
    return [b - my - slope * (a - mx) for a, b in zip(x, y)]


# With `spread`, the typical residual size at a length is floored at this share of its mean over all
# lengths: a line fitted to |residuals| can reach 0 at an extreme length, where it would blow residuals up.
MIN_SPREAD_SHARE = 0.2


def _against_length_line(values: Sequence[float], lengths: Sequence[int], spread: bool = False) -> list[float]:
    """`length_adjusted` for rows that share one line."""
    n = len(values)
    if n == 0:
        return []
    x = [math.log(v) for v in lengths]
    residuals = _residuals(x, values)
    if spread:
        size = [abs(e) for e in residuals]
        floor = MIN_SPREAD_SHARE * sum(size) / n
        if floor > 1e-12:  # the line of |residual| on log(length): size less its own residuals
            typical = [s - r for s, r in zip(size, _residuals(x, size))]
            residuals = [e / max(floor, t) for e, t in zip(residuals, typical)]
    sd = math.sqrt(sum(e * e for e in residuals) / n)
    if sd <= 1e-12:  # nothing stands out: every row is as expected for its length
        return [0.5] * n
    return [0.5 * (1.0 + math.erf(e / sd / math.sqrt(2.0))) for e in residuals]


def penalized(confidence: float, defective: bool, penalty: float) -> float:
    """The confidence of a row after the defect checks (clearcurate.core.defects): times `penalty` when any
    check found a defect, unchanged otherwise. One penalty whatever the number of defects: a defect
    puts a row among the lowest scores, and the filter removes it anyway."""
    if not 0.0 <= penalty <= 1.0:
        raise ValueError(f"the defect penalty must be in [0, 1], got {penalty}")
    return confidence * penalty if defective else confidence


def paper_weights(beta: float) -> dict[str, float]:
    """The paper's C = beta * O + (1 - beta) * S."""
    if not 0.0 <= beta <= 1.0:
        raise ValueError(f"beta must be in [0, 1], got {beta}")
    return {"consistency": beta, "reflection": 1.0 - beta}


def candidate_preference(letter_probs: Sequence[float], candidate_is_a: bool) -> float:
    """P(candidate is better) from the judge's P(A), P(B), whichever slot the candidate was shown in."""
    p_a, p_b = letter_probs[0], letter_probs[1]
    total = p_a + p_b
    if total <= 0:
        raise ValueError("judge probabilities sum to zero")
    return (p_a if candidate_is_a else p_b) / total
