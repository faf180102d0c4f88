import json

import pytest

from clearcurate.data.noisy_data import (
    GSM8K_TEST_SOURCE,
    GSM8K_TRAIN_SOURCE,
    SQUAD_SOURCE,
    Gsm8kNConfig,
    SquadNConfig,
    alter_step,
    build_gsm8k_dev,
    build_gsm8k_n,
    build_squad_dev,
    build_squad_n,
    gsm8k_final_answer,
    plausible_span,
    split_sentences,
    squad_split,
)
from helpers import ROOT

RAW = ROOT / "data" / "raw"


def test_split_sentences():
    assert split_sentences("It rained. Then it stopped! Why? 3 birds sang.") == [
        "It rained.", "Then it stopped!", "Why?", "3 birds sang."
    ]


def test_bundled_data_is_reproducible_and_split_by_article():
    train, test, labels = build_squad_n(SQUAD_SOURCE, SquadNConfig())
    committed = [json.loads(line) for line in (RAW / "train.jsonl").read_text(encoding="utf-8").splitlines()]
    assert train == committed
    assert not {r["title"] for r in train} & {r["title"] for r in test}
    noisy = {label["id"] for label in labels if label["noisy"]}
    assert len(noisy) == round(0.2 * len(train))
    by_id = {r["id"]: r for r in train}
    for label in labels:
        row = by_id[label["id"]]
        if label["noisy"]:  # a different sentence of the same paragraph, not containing the answer
            assert row["response"] != label["clean_response"] and row["response"] in row["prompt"]
            assert label["clean_response"] not in row["response"]
        else:
            assert row["response"] == label["clean_response"]
    assert all("noisy" not in r and "answers" not in r for r in train)


def test_gsm8k_final_answer():
    assert gsm8k_final_answer("2+2=4\n#### 1,004") == "1004"
    with pytest.raises(ValueError, match="no '####'"):
        gsm8k_final_answer("just text")


def test_gsm8k_n_swaps_in_other_solutions_with_a_different_answer():
    cfg = Gsm8kNConfig(n_train=40, n_test=10, noise_rate=0.25, seed=3)
    train, test, labels = build_gsm8k_n(GSM8K_TRAIN_SOURCE, GSM8K_TEST_SOURCE, cfg)
    assert (train, test, labels) == build_gsm8k_n(GSM8K_TRAIN_SOURCE, GSM8K_TEST_SOURCE, cfg)  # seeded
    assert len(train) == 40 and len(test) == 10 and sum(x["noisy"] for x in labels) == 10
    clean_solutions = {x["clean_response"] for x in labels}
    by_id = {r["id"]: r for r in train}
    for label in labels:
        row = by_id[label["id"]]
        assert "<<" not in row["response"] and "####" in row["response"]
        if label["noisy"]:  # another training question's solution, with another final number
            assert row["response"] in clean_solutions
            assert gsm8k_final_answer(row["response"]) != gsm8k_final_answer(label["clean_response"])
        else:
            assert row["response"] == label["clean_response"]
    assert all(r["answers"] == [gsm8k_final_answer(r["response"])] for r in test)
    assert not {r["id"] for r in train} & {r["id"] for r in test}


def test_plausible_span_is_another_answer_of_the_same_kind_and_length():
    import random

    rng = random.Random(0)
    others = ["1066", "William the Conqueror", "the Battle of Hastings", "Normandy", "three days", "in 1066"]
    assert plausible_span(["Harold Godwinson"], others, rng) == "William the Conqueror"  # a name, two-three words
    assert plausible_span(["1087"], others, rng) in {"1066", "three days", "in 1066"} - {"three days"}
    assert plausible_span(["Normandy"], ["Normandy", "normandy."], rng) is None  # only the gold answer itself


def test_squad_plausible_noise_uses_answer_spans_of_the_same_paragraph():
    train, _, labels = build_squad_n(SQUAD_SOURCE, SquadNConfig(noise="plausible"))
    clean, _, _ = build_squad_n(SQUAD_SOURCE, SquadNConfig())
    assert [r["id"] for r in train] == [r["id"] for r in clean]  # same rows as SQuAD-N, other noise
    by_id = {r["id"]: r for r in train}
    noisy = [label for label in labels if label["noisy"]]
    assert len(noisy) == 20
    for label in noisy:
        wrong = by_id[label["id"]]["response"]
        assert wrong in by_id[label["id"]]["prompt"] and wrong != label["clean_response"]
        assert len(wrong.split()) <= 3 * max(3, len(label["clean_response"].split()))  # a span, not a sentence
    with pytest.raises(ValueError, match="noise"):
        SquadNConfig(noise="random")


def test_alter_step_changes_one_step_and_carries_it_to_a_wrong_final_number():
    import random

    solution = "She sold 48/2 = 24 clips in May.\nShe sold 48+24 = 72 clips in total.\n#### 72"
    altered = alter_step(solution, random.Random(1))
    assert altered is not None and altered != solution
    assert gsm8k_final_answer(altered) != "72"
    lines = altered.split("\n")
    assert len(lines) == 3 and lines[2].startswith("#### ")
    # Internally consistent: the last step's arithmetic still holds after the slip.
    first = int(lines[0].split("= ")[1].split()[0])
    assert lines[1] == f"She sold 48+{first} = {48 + first} clips in total." and gsm8k_final_answer(altered) == str(48 + first)
    assert alter_step("no arithmetic here\n#### 5", random.Random(0)) is None
    assert alter_step("not a solution", random.Random(0)) is None


def test_gsm8k_plausible_noise_keeps_the_question_and_makes_the_answer_wrong():
    cfg = Gsm8kNConfig(n_train=50, n_test=5, noise_rate=0.2, noise="plausible")
    train, _, labels = build_gsm8k_n(GSM8K_TRAIN_SOURCE, GSM8K_TEST_SOURCE, cfg)
    by_id = {r["id"]: r for r in train}
    noisy = [label for label in labels if label["noisy"]]
    assert len(noisy) == 10
    for label in noisy:
        wrong = by_id[label["id"]]["response"]
        assert gsm8k_final_answer(wrong) != gsm8k_final_answer(label["clean_response"])
        assert wrong.count("\n") == label["clean_response"].count("\n")  # the same solution, one step altered


def test_dev_rows_never_touch_benchmark_test_articles_or_training_rows():
    cfg = SquadNConfig()
    test_titles, train_ids = squad_split(SQUAD_SOURCE, cfg)
    _, test, _ = build_squad_n(SQUAD_SOURCE, cfg)
    assert {r["title"] for r in test} <= test_titles
    dev, labels = build_squad_dev(SQUAD_SOURCE, SquadNConfig(noise="plausible"), test_titles, train_ids)
    assert len(dev) == 100 and sum(x["noisy"] for x in labels) == 20
    assert not {r["title"] for r in dev} & test_titles and not {r["id"] for r in dev} & train_ids
    bench, _, _ = build_gsm8k_n(GSM8K_TRAIN_SOURCE, GSM8K_TEST_SOURCE, Gsm8kNConfig())
    gdev, _ = build_gsm8k_dev(GSM8K_TRAIN_SOURCE, Gsm8kNConfig(), {r["id"] for r in bench})
    assert not {r["id"] for r in gdev} & {r["id"] for r in bench}
    assert all(r["id"].startswith("gsm8k-train-") for r in gdev)
