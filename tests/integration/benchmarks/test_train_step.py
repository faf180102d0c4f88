"""benchmarks/train_step.py runs on the tiny model and reports every setting it compares (no timings asserted)."""

from __future__ import annotations

import json
import sys

from helpers import ROOT, run_cmd


def test_train_step_profile_reports_each_setting_and_the_operators(tiny_model_dir, tmp_path):
    rows = tmp_path / "train.jsonl"
    rows.write_text("".join(json.dumps({"id": str(i), "prompt": f"Question {i}: what is {i} + {i}?", "response": str(2 * i)}) + "\n"
                            for i in range(16)))
    out = run_cmd([sys.executable, str(ROOT / "benchmarks" / "train_step.py"), "--steps", "2",
                   "--model-dir", str(tiny_model_dir), "--rows", str(rows)], cwd=ROOT, stdout_only=True)
    report = json.loads(out)
    settings = ["fp32, lora_dropout 0.05 (before)", "fp32, lora_dropout 0", "bf16 autocast, lora_dropout 0.05",
                "bf16 autocast, lora_dropout 0"]
    assert list(report["seconds_per_step"]) == settings and report["relative_to_before"][settings[0]] == 1.0
    assert all(s > 0 for s in report["seconds_per_step"].values())
    shares = report["step_operators_before (share of CPU time)"]
    assert 0 < len(shares) <= 6 and 0 < sum(shares.values()) <= 1.0 + 1e-6
    assert report["batch"]["rows"] == 8 and report["batch"]["mean_tokens"] > 0
