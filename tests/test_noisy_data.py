import json
from pathlib import Path

import pytest

from clearcurate.noisy_data import (
    Gsm8kNConfig,
    SquadNConfig,
    build_gsm8k_n,
    build_squad_n,
    gsm8k_final_answer,
    split_sentences,
)

SQUAD = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "squad-v1.1-dev" / "dev.jsonl"
RAW = Path(__file__).resolve().parents[1] / "data" / "raw"


def test_split_sentences():
    assert split_sentences("It rained. Then it stopped! Why? 3 birds sang.") == [
        "It rained.", "Then it stopped!", "Why?", "3 birds sang."
    ]


@pytest.mark.skipif(not SQUAD.exists(), reason="needs ../shared/data")
def test_bundled_data_is_reproducible_and_split_by_article():
    train, test, labels = build_squad_n(SQUAD, SquadNConfig())
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


GSM8K = SQUAD.parents[1] / "gsm8k"


def test_gsm8k_final_answer():
    assert gsm8k_final_answer("2+2=4\n#### 1,004") == "1004"
    with pytest.raises(ValueError, match="no '####'"):
        gsm8k_final_answer("just text")


@pytest.mark.skipif(not GSM8K.exists(), reason="needs ../shared/data")
def test_gsm8k_n_swaps_in_other_solutions_with_a_different_answer():
    cfg = Gsm8kNConfig(n_train=40, n_test=10, noise_rate=0.25, seed=3)
    train, test, labels = build_gsm8k_n(GSM8K / "train.jsonl", GSM8K / "test.jsonl", cfg)
    assert (train, test, labels) == build_gsm8k_n(GSM8K / "train.jsonl", GSM8K / "test.jsonl", cfg)  # seeded
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
