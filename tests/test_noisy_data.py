import json
from pathlib import Path

import pytest

from clearcurate.noisy_data import SquadNConfig, build_squad_n, split_sentences

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
