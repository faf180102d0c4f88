"""DVC stage `evaluate`: every model on the clean test set, plus the scorer's detection quality.

The base model is loaded once; the three adapters are attached to it and switched in turn, and a
model that is the same as an earlier one (retrain reused the filtered adapter) is run once. A model's answers
on the test set are cached by its weights (clearcurate.answers.cached_answers): a filter experiment answers
with the new models only.
With `engine: ray` this model work (clearcurate.answers) runs in blocks of test rows on a Ray
cluster's actors, each holding the base model and the adapters; a row that fails there stops the
stage, after every other row is done, with the failed rows and their reasons (metrics over a subset
of the test set would mislead). Metrics are computed here, the same for either engine.
Test rows with `answers` (short-answer QA) get SQuAD exact match and F1, or exact match of the final
number when every reference is a worked solution (`#### 42`); otherwise (free-form data) the greedy
answer's token F1 with the reference response (clearcurate.core.evaluation.per_question_scores). Every model also gets held-out
loss: the reference responses' per-token negative log-likelihood (local models only). Every metric comes with n and its 95%
bootstrap CI over the test questions, and `filtered_vs_baseline` / `corrected_vs_filtered` give the paired differences with
theirs (the decision a user takes rests on those, not on two means read side by side).
Noise labels (`evaluate.noise_labels`, inside the --labels folder) are read here and nowhere else; without
them (null or absent) there are no detection metrics at all, not zeros.
"""

from __future__ import annotations

import logging
from pathlib import Path

from clearcurate.answers import BASE, cached_answers, identities, test_rows
from clearcurate.cache import ScoreCache, cache_dir
from clearcurate.core.evaluation import COMPARISONS, correction_scores, detection_scores, differences, per_question_scores, with_uncertainty
from clearcurate.core.records import read_jsonl, write_json, write_jsonl
from clearcurate.llm.base import RowsFailed
from clearcurate.pipeline import setup_logging, stage_args, stage_params
from clearcurate.runtime import sessions

log = logging.getLogger("evaluate")
MODELS = ("baseline", "filtered", "corrected")  # adapters on the base model, each a --<name> argument


def labels_path(value: str | None, labels_dir: Path) -> Path | None:
    """`evaluate.noise_labels`: None (no labels), or a file inside `labels_dir` (what DVC tracks for this stage)."""
    if value is None or value == "":
        return None
    path = Path(value)
    if labels_dir.resolve() not in path.resolve().parents:
        raise SystemExit(f"evaluate.noise_labels: {value} is outside {labels_dir}/, the folder dvc.yaml tracks for "
                         f"evaluate; move the file there (or set noise_labels: null to run without labels)")
    if not path.is_file():
        raise SystemExit(f"evaluate.noise_labels: {value} not found (set noise_labels: null to run without labels)")
    return path


def main() -> None:
    args = stage_args(
        __doc__, "test", "scored", "removed", "decisions", "labels", "base", *MODELS, "predictions", "scores", "metrics",
    )
    setup_logging()
    p = stage_params("evaluate")
    cfg = p.evaluate
    adapters = {name: getattr(args, name) for name in MODELS}
    labels_file = labels_path(cfg.noise_labels, args.labels)
    test = read_jsonl(args.test)
    with sessions.trained_model(p, "evaluate", args.base) as session:
        lm = session.lm
        rows = test_rows(lm, test, cfg.max_new_tokens, cfg.max_new_tokens_cap)
        if not all(r.get("answers") for r in test):
            log.info("test rows without `answers`: free-form metrics (token F1 with the reference, held-out loss), not exact match")
        with_loss = lm.supports_logprobs
        if not with_loss:
            log.info("held-out loss needs the reference's log-likelihood, which a chat API does not give: left out")
        identity = identities(lm, session.engine, adapters)
        # The same model (retrain reused the filtered adapter or model id) gives the same answers: run the first only.
        runs: dict[str, str] = {}
        for name in MODELS:
            runs.setdefault(identity[name], name)
        models = {BASE: BASE, **{name: identity[name] for name in runs.values()}}
        try:
            answers, reused = cached_answers(lm, session.engine, rows, models, with_loss, adapters, ScoreCache(cache_dir()),
                                             session.model_id)
        except RowsFailed as err:
            raise SystemExit(f"evaluate: {err}: no metrics are written (metrics over the other test rows would mislead)") from None
        if reused:
            log.info("answers of %s reused from the cache (%s): the same model on the same test rows", ", ".join(reused), cache_dir())
        usage = session.usage()

    metrics: dict[str, dict[str, float]] = {}
    predictions: list[dict[str, str]] = []
    per_question: dict[str, dict[str, list[float]]] = {}
    for name in (BASE, *MODELS):
        run = name if name == BASE else runs[identity[name]]
        if run != name:
            log.info("%s is the same model as %s: its answers are reused", name, run)
        texts = [a[run]["text"] for a in answers]
        per_question[name] = per_question_scores(texts, test, [a[run]["nll"] for a in answers] if with_loss else None)
        metrics[name] = with_uncertainty(per_question[name])
        predictions += [{"model": name, "id": r["id"], "prediction": t} for r, t in zip(test, texts)]
        log.info("%-9s %s", name, "  ".join(f"{k} {v:.3f}" for k, v in metrics[name].items() if not k.endswith(("_low", "_high"))))
    for model, reference in COMPARISONS:  # paired on the same questions: what a user's decision rests on
        metrics[f"{model}_vs_{reference}"] = differences(per_question[model], per_question[reference])

    if labels_file is None:
        log.info("no noise labels (evaluate.noise_labels is null): no detection or correction metrics")
    elif not (labels := {r["id"]: r for r in read_jsonl(labels_file)}):
        log.info("%s is empty: no detection or correction metrics", labels_file)
    else:
        noisy = {i: bool(r["noisy"]) for i, r in labels.items()}
        confidence = {r["id"]: float(r["confidence"]) for r in read_jsonl(args.scored)}
        removed = {r["id"] for r in read_jsonl(args.removed)}
        metrics["detection"] = detection_scores(confidence, noisy, removed)
        log.info("detection: %s", metrics["detection"])
        metrics["correction"] = correction_scores(read_jsonl(args.decisions), labels)
        log.info("Auto-Correct against the noise labels: %s", metrics["correction"])
    write_json(args.metrics, {**metrics, **usage})
    # What the plot draws, named in every row: F1 with answers, exact match alone for final numbers (GSM8K-style
    # references give no F1), else token F1 with the reference.
    headline = next(m for m in ("f1", "exact_match", "token_f1_vs_reference") if m in metrics[BASE])
    write_json(
        args.scores,
        [{"model": m, "metric": headline, "score": metrics[m][headline], **metrics[m]} for m in (BASE, *MODELS)],
    )
    write_jsonl(args.predictions, predictions)


if __name__ == "__main__":
    main()
