"""Free-form development measurements: does the confidence measure quality or length?

On clean free-form rows (Dolly responses written by people; GSM8K worked solutions) a fair score
does not follow the response's length; on Dolly-N (20% of responses given a realistic defect:
another instruction's response, cut off midway, a number changed, an evasive non-answer) it
separates noisy rows from clean ones. Each set is scored twice with the crossfit recipe: with the
fixed sample budget (`score.max_new_tokens_cap: 0`, the old behaviour) and with the
length-aware one (`clearcurate.core.budget`). From the stored samples the report recomputes, without
new model calls, the likelihood component per token instead of per response and every candidate
weighting, and prints as JSON: Spearman(response length, score) on the clean sets and AUROC on
Dolly-N. Every row comes from the development pools (`noisy_freeform.pool_of`, GSM8K training
questions no benchmark trains on), never from a benchmark's rows.

    .venv/bin/python benchmarks/curation/dev_freeform.py            # score (resumable)
    .venv/bin/python benchmarks/curation/dev_freeform.py --report --params benchmarks/curation/settings_before_issue30.yaml
        # the numbers, also to dev_freeform_results.json, from stored results: they were scored with those settings
"""

from __future__ import annotations

import json
import logging
import math
import sys
from dataclasses import dataclass
from typing import Any

import baselines
import numpy as np
from cells import train_config
from dev import DEV_SETS, SCORED_WITH, dev_cli, dev_rows, grid, refuse_other_settings, score_key
from harness import Cache
from noisy_freeform import DOLLY_SOURCE, DollyNConfig, build_dolly_n
from scipy.stats import spearmanr
from sklearn.metrics import roc_auc_score
from specs import HERE, DatasetSpec

from clearcurate.core import confidence as cf
from clearcurate.core.presets import DEFECT_PENALTY, FLUENCY_SCALE, PRESETS
from clearcurate.core.records import Record, write_json
from clearcurate.llm import models
from clearcurate.llm.factory import load_lm
from clearcurate.scoring import ScoreConfig, score_rows
from clearcurate.scoring import likelihood as scoring_likelihood
from clearcurate.scoring.similarity import get_similarity

log = logging.getLogger("dev-freeform")


@dataclass(frozen=True)
class FreeformSet:
    name: str
    kind: str  # dolly | gsm8k
    noise_rate: float


SETS = [
    FreeformSet("dev-dolly-clean", "dolly", 0.0),
    FreeformSet("dev-dolly-n-20", "dolly", 0.2),
    FreeformSet("dev-gsm8k-clean", "gsm8k", 0.0),
]
BUDGETS = {"fixed 32 tokens": 0, "length-aware (cap 256)": 256}  # score.max_new_tokens_cap


def rows_of(spec: FreeformSet) -> tuple[list[Record], dict[str, Record]]:
    if spec.kind == "dolly":
        train, _, labels = build_dolly_n(DOLLY_SOURCE, DollyNConfig(n_train=100, n_test=0, noise_rate=spec.noise_rate, pool="dev"))
        return train, {label["id"]: label for label in labels}
    return dev_rows(DatasetSpec(spec.name, "gsm8k", 0.0, 100, 0, 32, ()))


# The settings these sets were scored with (their stored results are keyed by them): the defaults
# of the time; the report recomputes every component from the stored samples.
FREEFORM_SCORED_WITH = {
    "weights": {"consistency": 0.6, "likelihood": 0.2, "relevance": 0.2}, "relevance_scale": 1.0, "likelihood_scale": 5.0,
}


def score_cfg(params: dict[str, Any], cap: int) -> ScoreConfig:
    return ScoreConfig(**{**params["score"], **FREEFORM_SCORED_WITH, "max_new_tokens_cap": cap})


# How the prompt's explanatory power (PMI) is normalised for length: per token (IFD's way) or not
# at all; with the scale (nats) that spreads it over [0, 1].
RELEVANCE_NORMS = {"per token": (lambda n: n, 5.0), "total": (lambda n: 1.0, 10.0)}
LIKELIHOODS = ("per response", "per token")
COMPONENTS = ("consistency", "likelihood", "relevance", "length", "fluency")
# How the base model's per-token log-likelihood of the response is spread over [0, 1] (nats per token).
FLUENCY_SCALES = (0.5, 1.0, 2.0, 4.0)


def recompute(
    record: Record, sample_tokens: list[int], response_tokens: int, likelihood: str, relevance: str, fluency_scale: float = FLUENCY_SCALE
) -> Record:
    """A stored record with likelihood, relevance, length and fluency computed the named way (library math)."""
    per = PRESETS["free_form" if likelihood == "per token" else "short"]  # the two definitions the presets use
    how = ScoreConfig(likelihood_per=per.likelihood_per, likelihood_scale=per.likelihood_scale)
    lik = scoring_likelihood(record["response_logprob"], response_tokens, record["sample_logprobs"], sample_tokens, how)
    divide, scale = RELEVANCE_NORMS[relevance]
    pmi = record["response_logprob"] - record["response_logprob_alone"]
    return {**record, "likelihood": lik, "relevance": max(0.0, 1.0 - math.exp(-pmi / divide(response_tokens) / scale)),
            "length": cf.length_agreement(response_tokens, sample_tokens, 1.0),
            **({"fluency": cf.fluency(record["response_logprob_base"], record["response_tokens_base"], fluency_scale)}
               if "response_logprob_base" in record else {})}


def variants(scored: list[Record], rows: list[Record], tokenizer: Any, fluency_scale: float = FLUENCY_SCALE) -> dict[str, list[Record]]:
    """Every (likelihood, relevance) definition applied to the stored records.

    Token counts are re-tokenised from the stored texts (+1 for the end of turn) where the
    records were stored before they carried them.
    """
    count = lambda t: len(tokenizer.encode(t, add_special_tokens=False)) + 1  # noqa: E731
    tokens = [r.get("sample_tokens") or [count(t) for t in r["samples"]] for r in scored]
    resp = [r.get("response_tokens") or count(row["response"]) for r, row in zip(scored, rows)]
    return {f"likelihood {lik}, relevance {rel}": [recompute(r, t, n, lik, rel, fluency_scale) for r, t, n in zip(scored, tokens, resp)]
            for lik in LIKELIHOODS for rel in RELEVANCE_NORMS}


def base_key(cache: Cache, rows: list[Record], params: dict[str, Any]) -> str:
    """Where a set's base-model log-likelihoods are stored (they depend on the rows and the model only)."""
    return f"base-logprob-{cache.key(rows, params['model']['name'], 'base-logprob')}"


def base_logprobs(lm: Any, rows: list[Record]) -> list[Record]:
    """The base model's log-likelihood of each response after its prompt, and its token count: what
    scoring computes for the fluency component."""
    pairs = lm.continuation_logprobs([lm.chat(r["prompt"]) for r in rows], [r["response"] for r in rows], desc="base logprob")
    return [{"response_logprob_base": lp, "response_tokens_base": n} for lp, n in pairs]


def with_base(scored: list[Record], base: list[Record]) -> list[Record]:
    """Stored scores joined with the base model's log-likelihood of each response (fluency's input)."""
    return [{**r, **b} for r, b in zip(scored, base)]


def baseline_scores(lm: Any, rows: list[Record]) -> dict[str, list[float]]:
    """Higher = cleaner: IFD and perplexity (Superfiltering), direct 1-5 rating (AlpaGasus)."""
    ppl = baselines.perplexity_scores(lm, rows)
    return {"ifd": [r["neg_ifd"] for r in ppl], "perplexity": [r["neg_loss"] for r in ppl], "rating": baselines.direct_rating(lm, rows)}


def labelled_sets(params: dict[str, Any], cache: Cache) -> dict[str, tuple[list[Record], dict[str, Record], list[Record]]]:
    """(rows, labels, stored records) of every development set this selection uses: the free-form sets
    scored with the length-aware budget, and dev.py's short-answer noisy sets (fixed budget; for
    SQuAD's short answers the length-aware budget is the same)."""
    train_cfg = train_config(params["train"])
    out = {}
    for spec in SETS:
        rows, labels = rows_of(spec)
        scored = cache.get(f"{spec.name}/score-{score_key(cache, rows, score_cfg(params, 256), train_cfg)}")
        if scored is not None and (base := cache.get(f"{spec.name}/{base_key(cache, rows, params)}")) is not None:
            out[spec.name] = (rows, labels, with_base(scored, base))
    for spec in DEV_SETS:
        if spec.noise_rate == 0:
            continue
        rows, labels = dev_rows(spec)
        cfg = ScoreConfig(**{**params["score"], **SCORED_WITH, "max_new_tokens": spec.max_new_tokens})
        scored = cache.get(f"{spec.name}/score-{score_key(cache, rows, cfg, train_cfg)}")
        if scored is not None and (base := cache.get(f"{spec.name}/{base_key(cache, rows, params)}")) is not None:
            out[spec.name] = (rows, labels, with_base(scored, base))
    return out


# `score.weights: auto` picks a preset by the data's median response length (clearcurate.core.presets).
# Each preset is chosen on the development sets of its kind, with the library's components
# (likelihood and relevance per token, length agreement):
# - short answers (SQuAD's spans): the best worst-case AUROC over SQuAD-N 20%, 40% and plausible
#   spans; a response far longer than the model's own answers is a real sign there.
# - free form (Dolly, GSM8K worked solutions): the best worst-case AUROC over Dolly-N and GSM8K-N
#   among the weightings whose |Spearman(length, confidence)| <= 0.2 on both clean free-form sets.
# (noisy sets chosen on, clean sets it must be length-fair on, the likelihood and relevance definitions)
PRESET_SETS = {
    "short": (("dev-squad-n-20", "dev-squad-n-40", "dev-squad-plausible-20"), (), "likelihood per response, relevance per token"),
    "free_form": (
        ("dev-dolly-n-20", "dev-gsm8k-n-20"), ("dev-dolly-clean", "dev-gsm8k-clean"), "likelihood per token, relevance per token",
    ),
}


# The weights in use before each choice: a tie on the worst case keeps them (a default changes only
# for a strict gain).
INCUMBENT = {
    "short": ({"consistency": 0.6, "likelihood": 0.2, "relevance": 0.2, "length": 0.0, "fluency": 0.0}, None),  # issue 11's
    "free_form": ({"consistency": 0.2, "likelihood": 0.7, "relevance": 0.1, "length": 0.0, "fluency": 0.0}, None),  # issue 12's
}


def component_matrix(recs: list[Record], length_adjusted: bool, groups: list[str] | None = None) -> np.ndarray:
    """Rows x COMPONENTS: the stored values, or each as it stands among the set's responses of its
    length (`confidence.length_adjusted`, the library's math, over the whole set as scoring does, or
    per group as `score.group_by` does)."""
    raw = np.array([[r[c] for c in COMPONENTS] for r in recs])
    if not length_adjusted:
        return raw
    lengths = [r.get("response_tokens") or r["response_tokens_base"] for r in recs]  # both count the end of turn
    return np.column_stack([cf.length_adjusted(list(raw[:, j]), lengths, groups) for j in range(len(COMPONENTS))])


# Sets that mix kinds of response (issue 12's Alpaca trial): Dolly answers and GSM8K worked solutions
# scored together, as a user who concatenates sources would; each row's source is its `score.group_by` group.
MIXED_SETS = {"dev-mixed-clean": ("dev-dolly-clean", "dev-gsm8k-clean"), "dev-mixed-n-20": ("dev-dolly-n-20", "dev-gsm8k-n-20")}


def mixed_report(sets: dict[str, Any], tokenizer: Any, preset: dict[str, Any]) -> dict[str, Any]:
    """The chosen free-form preset on the mixed sets, with one length line over the mix and with one per source."""
    chosen = preset["chosen"]
    weights = np.array([chosen["weights"][c] for c in COMPONENTS])
    out: dict[str, Any] = {}
    for name, parts in MIXED_SETS.items():
        if not all(p in sets for p in parts):
            continue
        rows, labels, recs, groups = [], {}, [], []
        for part in parts:
            part_rows, part_labels, scored = sets[part]
            rows += part_rows
            labels.update(part_labels)
            recs += variants(scored, part_rows, tokenizer, chosen["fluency_scale"] or FLUENCY_SCALE)[preset["definitions"]]
            groups += [part] * len(part_rows)
        y = np.array([0 if labels[r["id"]]["noisy"] else 1 for r in rows])
        clean = y == 1
        lengths = np.array([len(r["response"]) for r in rows])
        res: dict[str, Any] = {"rows": len(rows), "noisy": int((~clean).sum())}
        for how, g in (("one length line (group_by: null)", None), ("one line per source (group_by: source)", groups)):
            conf = component_matrix(recs, chosen["length_adjusted"], g) @ weights
            res[how] = {
                "spearman_length_confidence_clean": round(float(spearmanr(lengths[clean], conf[clean]).statistic), 3),
                "mean_confidence_clean_by_source": {p: round(float(conf[clean & (np.array(groups) == p)].mean()), 3) for p in parts},
                **({"auroc": round(float(roc_auc_score(y, conf)), 3)} if 0 < y.sum() < len(y) else {}),
            }
        out[name] = res
    return out


def penalised(confidences: Any, flags: list[bool]) -> list[float]:
    """Confidences after the defect checks, as scoring applies them (`confidence.penalized`)."""
    return [cf.penalized(float(v), bad, DEFECT_PENALTY) for v, bad in zip(confidences, flags, strict=True)]


def choose_presets(sets: dict[str, Any], tokenizer: Any, preset_sets: dict[str, Any] = PRESET_SETS,
                   defective: dict[str, list[bool]] | None = None) -> dict[str, Any]:
    """Per preset: among the weightings (and fluency scales) that are length-fair on its clean sets,
    over raw and length-adjusted components, the best worst-case AUROC over its noisy sets
    (`preset_sets`: PRESET_SETS's shape, for asking what another choice of sets would pick; `defective`:
    each set's rows the defect checks flag, whose confidence is penalised as scoring does)."""
    y = {s: [0 if labels[r["id"]]["noisy"] else 1 for r in rows] for s, (rows, labels, _) in sets.items()}
    lengths = {s: [len(r["response"]) for r in rows] for s, (rows, _, _) in sets.items()}
    out = {}
    for preset, (noisy, clean, definitions) in preset_sets.items():
        results = []
        # Length-adjusted components at the library's fluency scale only (a monotone rescaling changes little
        # once each component is ranked against its length trend).
        for adjusted, scale in [*((False, s) for s in FLUENCY_SCALES), (True, FLUENCY_SCALE)]:
            recs = {s: variants(scored, rows, tokenizer, scale)[definitions] for s, (rows, _, scored) in sets.items()}
            matrix = {s: component_matrix(recs[s], adjusted) for s in (*noisy, *clean)}
            for w in grid(COMPONENTS):
                if not adjusted and not w["fluency"] and scale != FLUENCY_SCALES[0]:
                    continue  # the scale changes nothing without fluency: each such weighting once
                conf = {s: matrix[s] @ np.array([w[c] for c in COMPONENTS]) for s in (*noisy, *clean)}
                rho = {s: round(float(spearmanr(lengths[s], conf[s]).statistic), 3) for s in clean}
                if all(abs(v) <= 0.2 for v in rho.values()):
                    if defective:
                        conf = {s: penalised(conf[s], defective[s]) if s in defective else conf[s] for s in conf}
                    auc = {s: round(float(roc_auc_score(y[s], conf[s])), 3) for s in noisy}
                    results.append({"weights": w, "length_adjusted": adjusted, "fluency_scale": scale if w["fluency"] else None,
                                    "min_auroc": min(auc.values()), "auroc": auc, "spearman_length_clean": rho})
        incumbent = INCUMBENT[preset]
        ranked = sorted(results, key=lambda r: (-r["min_auroc"], (r["weights"], r["fluency_scale"]) != incumbent,
                                                -sum(r["auroc"].values()), r["fluency_scale"] or 0))
        best_raw = next((r for r in ranked if not r["length_adjusted"]), None)
        out[preset] = {
            "definitions": definitions, "chosen_on": list(noisy), "fair_on": list(clean), "chosen": ranked[0], "runners_up": ranked[1:3],
            "best without length adjustment": best_raw,
        }
    return out


def report(params: dict[str, Any], cache: Cache, tokenizer: Any) -> dict[str, Any]:
    """Length bias and detection of every definition and weighting; the choice: among weightings whose
    |Spearman(length, confidence)| <= 0.2 on both clean free-form sets, the best worst-case AUROC over the
    noisy sets where some component reaches 0.6 (the others carry no signal to weigh)."""
    sets = labelled_sets(params, cache)
    refuse_other_settings([spec.name for spec in SETS if spec.name not in sets and cache.entries(spec.name)], "dev_freeform.py")
    out: dict[str, Any] = {"sets": {}}
    train_cfg = train_config(params["train"])
    for spec in SETS:  # the budget comparison: fixed against length-aware, stored components as they were
        rows, labels = rows_of(spec)
        lengths = [len(r["response"]) for r in rows]
        clean = [i for i, r in enumerate(rows) if not labels[r["id"]]["noisy"]]
        res: dict[str, Any] = {
            "rows": len(rows), "noisy": len(rows) - len(clean), "median_response_chars": sorted(lengths)[len(lengths) // 2],
        }
        for budget_name, cap in BUDGETS.items():
            scored = cache.get(f"{spec.name}/score-{score_key(cache, rows, score_cfg(params, cap), train_cfg)}")
            if scored is not None and (base := cache.get(f"{spec.name}/{base_key(cache, rows, params)}")) is not None:
                scored = with_base(scored, base)
                best = variants(scored, rows, tokenizer)["likelihood per token, relevance total"]
                res[budget_name] = {c: round(float(spearmanr([lengths[i] for i in clean], [best[i][c] for i in clean]).statistic), 3)
                                    for c in (*COMPONENTS, "reflection") if c in best[0]}
        out["sets"][spec.name] = {**res, "note": "Spearman(response length, component) on the clean rows"}
    per_variant: dict[str, Any] = {}
    for name in (f"likelihood {lik}, relevance {rel}" for lik in LIKELIHOODS for rel in RELEVANCE_NORMS):
        recs = {s: variants(scored, rows, tokenizer)[name] for s, (rows, _, scored) in sets.items()}
        y = {s: [0 if labels[r["id"]]["noisy"] else 1 for r in rows] for s, (rows, labels, _) in sets.items()}
        noisy = [s for s in recs if 0 < sum(y[s]) < len(y[s])]
        clean = [s for s in recs if sum(y[s]) == len(y[s])]
        lengths = {s: [len(r["response"]) for r in rows] for s, (rows, _, _) in sets.items()}
        components = {s: {c: round(float(roc_auc_score(y[s], [r[c] for r in recs[s]])), 3) for c in COMPONENTS} for s in noisy}
        informative = [s for s in noisy if max(components[s].values()) >= 0.6]
        results = []
        for w in grid(COMPONENTS):
            conf = {s: [cf.combine(r, w) for r in recs[s]] for s in recs}
            auc = {s: round(float(roc_auc_score(y[s], conf[s])), 3) for s in noisy}
            rho = {s: round(float(spearmanr(lengths[s], conf[s]).statistic), 3) for s in clean}
            results.append({"weights": w, "min_auroc": min(auc[s] for s in informative), "auroc": auc, "spearman_length_clean": rho})
        fair = [r for r in results if all(abs(v) <= 0.2 for v in r["spearman_length_clean"].values())]
        ranked = sorted(fair, key=lambda r: (-r["min_auroc"], -sum(r["auroc"].values())))
        per_variant[name] = {"component_auroc": components, "informative": informative, "fair_weightings": len(fair),
                             "chosen": ranked[0] if ranked else None, "runners_up": ranked[1:3]}
    out["selection"] = per_variant
    out["presets"] = choose_presets(sets, tokenizer)
    out["mixed kinds (free_form preset)"] = mixed_report(sets, tokenizer, out["presets"]["free_form"])
    for spec in SETS:  # the baselines a free-form user would try, on the same rows
        rows, labels = rows_of(spec)
        if spec.noise_rate and (base := cache.get(f"{spec.name}/baselines-{cache.key(rows, params['model']['name'])}")):
            y = [0 if labels[r["id"]]["noisy"] else 1 for r in rows]
            out["sets"][spec.name]["baseline_auroc"] = {k: round(float(roc_auc_score(y, v)), 3) for k, v in base.items()}
    best = max((v for v in per_variant.values() if v["chosen"]), key=lambda v: v["chosen"]["min_auroc"], default=None)
    out["chosen"] = next((k for k, v in per_variant.items() if v is best), None)
    if "dev-dolly-n-20" in sets:  # which free-form defects the free-form preset catches
        rows, labels, scored = sets["dev-dolly-n-20"]
        chosen = out["presets"]["free_form"]["chosen"]
        recs = variants(scored, rows, tokenizer, chosen["fluency_scale"] or FLUENCY_SCALE)[out["presets"]["free_form"]["definitions"]]
        conf = list(component_matrix(recs, chosen["length_adjusted"]) @ np.array([chosen["weights"][c] for c in COMPONENTS]))
        kinds = sorted({lab["noise_type"] for lab in labels.values() if lab["noisy"]})
        out["free_form_auroc_by_defect (dev-dolly-n-20, each defect against the clean rows)"] = {
            kind: round(float(roc_auc_score(*zip(*[(0 if labels[r["id"]]["noisy"] else 1, c) for r, c in zip(rows, conf)
                                                    if labels[r["id"]]["noise_type"] in (None, kind)]))), 3)
            for kind in kinds
        }
    return out


def main(argv: list[str] | None = None) -> int:
    args, params, typed, cache, model_dir = dev_cli(__doc__, argv)
    if args.report:
        _, tokenizer = models.load(model_dir)
        measured = report(params, cache, tokenizer)
        write_json(HERE / "dev_freeform_results.json", measured)  # the evidence behind the length-fair defaults, committed
        print(json.dumps(measured, indent=1))
        return 0
    lm = load_lm(typed, model_dir)
    train_cfg = train_config(params["train"])
    for spec in SETS:
        if args.only is not None and spec.name not in args.only:
            continue
        rows, _ = rows_of(spec)
        for budget_name, cap in BUDGETS.items():
            cfg = score_cfg(params, cap)
            log.info("%s: scoring with %s", spec.name, budget_name)
            cache.fetch(f"{spec.name}/score-{score_key(cache, rows, cfg, train_cfg)}",
                        lambda cfg=cfg, rows=rows: score_rows(lm, rows, cfg, get_similarity(cfg.similarity), train_cfg))
        if spec.noise_rate:  # what a user would try instead, on the base model (as in run.py)
            cache.fetch(f"{spec.name}/baselines-{cache.key(rows, params['model']['name'])}", lambda rows=rows: baseline_scores(lm, rows))
    every = [(spec.name, rows_of(spec)[0]) for spec in SETS] + [(spec.name, dev_rows(spec)[0]) for spec in DEV_SETS if spec.noise_rate]
    for name, rows in every:
        if args.only is None or name in args.only:  # fluency's input: one forward pass of the base model per row
            cache.fetch(f"{name}/{base_key(cache, rows, params)}", lambda rows=rows: base_logprobs(lm, rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
