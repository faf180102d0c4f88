import random
from collections import Counter

import pytest
from noisy_freeform import (
    DEFECTS,
    DOLLY_SOURCE,
    EVASIVE,
    SHORT_WORDS,
    DollyNConfig,
    alter_number,
    build_dolly_n,
    pool_of,
    truncate,
)


def test_dolly_n_injects_every_defect_with_labels_and_keeps_test_rows_clean_and_free_form():
    train, test, labels = build_dolly_n(DOLLY_SOURCE, DollyNConfig(n_train=100, n_test=20))
    assert len(train) == 100 and len(test) == 20 and len(labels) == 100
    assert {r["id"] for r in train}.isdisjoint(r["id"] for r in test)
    assert all("answers" not in r for r in test)  # free-form: scored by overlap and held-out loss
    noisy = [lab for lab in labels if lab["noisy"]]
    assert len(noisy) == 20 and set(Counter(lab["noise_type"] for lab in noisy)) == set(DEFECTS)
    by_id = {r["id"]: r for r in train}
    for lab in labels:
        row = by_id[lab["id"]]
        assert (row["response"] != lab["clean_response"]) == lab["noisy"]
        if lab["noise_type"] == "evasive":
            assert row["response"] in EVASIVE
        if lab["noise_type"] == "truncate":
            assert lab["clean_response"].startswith(row["response"]) and len(row["response"]) < len(lab["clean_response"])
    assert build_dolly_n(DOLLY_SOURCE, DollyNConfig(n_train=100, n_test=20)) == (train, test, labels)  # seeded


def test_development_and_benchmark_pools_never_share_a_row():
    bench_train, bench_test, _ = build_dolly_n(DOLLY_SOURCE, DollyNConfig(n_train=300, n_test=100))
    dev_train, _, _ = build_dolly_n(DOLLY_SOURCE, DollyNConfig(n_train=300, n_test=0, pool="dev"))
    assert {r["id"] for r in dev_train}.isdisjoint(r["id"] for r in bench_train + bench_test)
    assert all(pool_of(r["id"]) == "dev" for r in dev_train)


def test_a_set_with_short_answers_holds_that_many_short_rows_noised_like_the_rest():
    cfg = DollyNConfig(n_train=150, n_test=10, pool="dev", short_rows=50)
    train, test, labels = build_dolly_n(DOLLY_SOURCE, cfg)
    clean_words = [len(lab["clean_response"].split()) for lab in labels]  # before a defect changed them
    assert len(train) == 150 and sum(w <= SHORT_WORDS for w in clean_words) == 50 and len(test) == 10
    assert all(len(r["response"].split()) > SHORT_WORDS for r in test) and all(pool_of(r["id"]) == "dev" for r in train + test)
    assert sum(lab["noisy"] for lab in labels) == 30 and sum(lab["noisy"] for lab, w in zip(labels, clean_words) if w <= SHORT_WORDS) > 0
    assert build_dolly_n(DOLLY_SOURCE, cfg) == (train, test, labels)  # seeded
    assert build_dolly_n(DOLLY_SOURCE, DollyNConfig(n_train=20, n_test=0)) == build_dolly_n(
        DOLLY_SOURCE, DollyNConfig(n_train=20, n_test=0, short_rows=0))  # earlier sets unchanged


def test_single_defect_builds_and_their_limits():
    _, _, labels = build_dolly_n(DOLLY_SOURCE, DollyNConfig(noise="number", n_train=50, n_test=0))
    assert {lab["noise_type"] for lab in labels if lab["noisy"]} == {"number"}
    with pytest.raises(ValueError, match="noise must be one of"):
        DollyNConfig(noise="typos")
    with pytest.raises(ValueError, match="eligible rows"):
        build_dolly_n(DOLLY_SOURCE, DollyNConfig(n_train=5000))


def test_alter_number_changes_exactly_one_number_and_truncate_needs_a_long_response():
    rng = random.Random(0)
    text = "The tower is 324 metres tall and opened in 1889 after 2 years of work."
    for _ in range(20):
        new = alter_number(text, rng)
        changed = [(a, b) for a, b in zip(text.split(), new.split()) if a != b]
        assert len(new.split()) == len(text.split()) and len(changed) == 1
    assert alter_number("No digits at all.", rng) is None
    assert truncate("Too short to cut.", rng) is None
    long = " ".join(f"word{i}" for i in range(20)) + "."
    cut = truncate(long, rng)
    assert long.startswith(cut) and 6 <= len(cut.split()) <= 12 and not cut.endswith(".")
