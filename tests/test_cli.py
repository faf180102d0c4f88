import json

import pytest

from clearcurate.cli import main


def test_make_squad_n_and_gsm8k_n_write_plausible_noise_from_the_bundled_sources(tmp_path):
    main(["make-squad-n", "--out", str(tmp_path / "squad"), "--labels", str(tmp_path / "labels.jsonl"), "--noise", "plausible"])
    assert not (tmp_path / "squad" / "noise_labels.jsonl").exists()  # labels live apart from the data curation reads
    labels = [json.loads(line) for line in (tmp_path / "labels.jsonl").read_text().splitlines()]
    assert len(labels) == 100 and sum(x["noisy"] for x in labels) == 20
    main(["make-gsm8k-n", "--out", str(tmp_path / "gsm"), "--labels", str(tmp_path / "gsm-labels.jsonl"), "--noise", "plausible", "--n-train", "20", "--n-test", "3"])
    train = (tmp_path / "gsm" / "train.jsonl").read_text().splitlines()
    assert len(train) == 20 and all("####" in json.loads(line)["response"] for line in train)


def test_an_unknown_noise_type_is_a_usage_error(capsys):
    with pytest.raises(SystemExit):
        main(["make-squad-n", "--out", "unused", "--noise", "random"])
    assert "invalid choice: 'random'" in capsys.readouterr().err
