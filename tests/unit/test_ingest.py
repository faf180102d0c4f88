"""Every input format is read, and every kind of bad row is quarantined exactly, without touching the others."""

from __future__ import annotations

import json

import pytest

from clearcurate.ingest import IngestConfig, load_rows
from clearcurate.records import InputError, content_id

GOOD = [{"id": "a", "prompt": "Capital of France?", "response": "Paris"},
        {"id": "b", "prompt": "2 + 2?", "response": "4", "meta": {"src": "x"}}]


def _jsonl(tmp_path, lines: list[bytes | str | dict], name: str = "train.jsonl"):
    path = tmp_path / name
    data = b"".join((x if isinstance(x, bytes) else (x if isinstance(x, str) else json.dumps(x)).encode()) + b"\n" for x in lines)
    path.write_bytes(data)
    return path


def test_plain_jsonl_keeps_extra_fields_and_hashes_missing_ids(tmp_path):
    path = _jsonl(tmp_path, [*GOOD, {"prompt": "Sky colour?", "response": "blue"}])
    rows, bad = load_rows(path, IngestConfig())
    assert bad == []
    assert rows[:2] == GOOD
    assert rows[2]["id"] == content_id("Sky colour?", "blue")


@pytest.mark.parametrize(
    ("line", "code", "reason"),
    [
        ("{oops", "unparseable", "invalid JSON (Expecting property name enclosed in double quotes)"),
        (b'{"prompt": "caf\xe9", "response": "x"}', "unparseable", "invalid UTF-8 at byte 15"),
        ('["not", "an", "object"]', "not_an_object", "expected a JSON object, got list"),
        ({"prompt": "Q"}, "missing_field", "missing field 'response'"),
        ({"prompt": "Q", "response": "   "}, "empty_field", "empty field 'response'"),
        ({"prompt": 42, "response": "x"}, "wrong_type", "field 'prompt' must be a string, got int"),
        ({"id": ["x"], "prompt": "Q", "response": "x"}, "wrong_type", "field 'id' must be a string or an integer, got list"),
        ({"id": "a", "prompt": "Other", "response": "row"}, "duplicate_id", "duplicate id 'a' with different content (first on line 1)"),
        ({"id": "a", "prompt": "Capital of France?", "response": "Paris"}, "duplicate_id",
         "duplicate id 'a' with same content (first on line 1)"),
        ({"id": "long", "prompt": "word " * 50, "response": "x"}, "too_long", "longer than the model's context (51 > 40 tokens)"),
    ],
)
def test_each_bad_row_is_quarantined_with_file_line_code_and_reason(tmp_path, line, code, reason):
    path = _jsonl(tmp_path, [GOOD[0], line, GOOD[1]])
    rows, bad = load_rows(path, IngestConfig(), token_count=lambda p, r: len(p.split()) + len(r.split()), max_tokens=40)
    assert rows == GOOD  # the other rows are untouched
    assert len(bad) == 1
    assert bad[0]["source"] == str(path) and bad[0]["line"] == 2 and bad[0]["reason"] == reason
    assert bad[0]["code"] == code  # machine-readable, for metrics and tools; the reason is for people
    assert bad[0]["raw"]  # a preview of what was rejected, for the user to find it


def test_strict_mode_and_unusable_files_stop_with_a_clear_error(tmp_path):
    path = _jsonl(tmp_path, [GOOD[0], "{oops"])
    with pytest.raises(InputError, match=r"train.jsonl:2: invalid JSON .*prepare.strict is true"):
        load_rows(path, IngestConfig(strict=True))
    with pytest.raises(InputError, match=r"no usable rows \(all 1 quarantined\)"):
        load_rows(_jsonl(tmp_path, ["{oops"], "bad.jsonl"), IngestConfig())
    with pytest.raises(InputError, match=r"no usable rows \(empty file\)"):
        load_rows(_jsonl(tmp_path, [], "empty.jsonl"), IngestConfig())
    with pytest.raises(InputError, match="no such file"):
        load_rows(tmp_path / "missing.jsonl", IngestConfig())


def test_alpaca_as_json_array_and_jsonl(tmp_path):
    items = [{"instruction": "Translate", "input": "chat", "output": "cat"}, {"instruction": "Say hi", "input": "", "output": "hi"}]
    (tmp_path / "alpaca.json").write_text(json.dumps(items))
    rows, bad = load_rows(tmp_path / "alpaca.json", IngestConfig())
    assert bad == [] and [(r["prompt"], r["response"]) for r in rows] == [("Translate\n\nchat", "cat"), ("Say hi", "hi")]
    rows_jsonl, _ = load_rows(_jsonl(tmp_path, items, "alpaca.jsonl"), IngestConfig(format="alpaca"))
    assert rows_jsonl == rows


def test_chat_messages_single_turn_with_system(tmp_path):
    ok = {"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi?"},
                       {"role": "assistant", "content": "Hello."}]}
    multi = {"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"},
                          {"role": "user", "content": "c"}, {"role": "assistant", "content": "d"}]}
    rows, bad = load_rows(_jsonl(tmp_path, [ok, multi]), IngestConfig())
    assert [(r["prompt"], r["response"]) for r in rows] == [("Be brief.\n\nHi?", "Hello.")]
    assert bad[0]["line"] == 2 and bad[0]["reason"].startswith("only single-turn chats")


def test_csv_and_parquet_with_a_column_mapping(tmp_path):
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame({"uid": ["1", "2", "3"], "question": ["Q1", "Q2", ""], "answer": ["A1", "A2", "A3"]})
    cfg = IngestConfig(columns={"id": "uid", "prompt": "question", "response": "answer"})
    frame.to_csv(tmp_path / "data.csv", index=False)
    rows, bad = load_rows(tmp_path / "data.csv", cfg)
    assert [(r["id"], r["prompt"], r["response"]) for r in rows] == [("1", "Q1", "A1"), ("2", "Q2", "A2")]
    assert bad[0]["line"] == 4 and bad[0]["reason"] == "empty field 'prompt'"  # header is line 1
    frame.to_parquet(tmp_path / "data.parquet")
    rows_pq, bad_pq = load_rows(tmp_path / "data.parquet", cfg)
    assert [r["id"] for r in rows_pq] == ["1", "2"] and bad_pq[0]["line"] == 3
    with pytest.raises(ValueError, match="unknown fields"):
        IngestConfig(columns={"question": "q"})
