import json

import pytest

from clearcurate.records import (
    InputError,
    content_id,
    read_jsonl,
    validate_instruction_rows,
    write_jsonl,
)


def test_content_id_is_stable_and_content_sensitive():
    assert content_id("p", "r") == content_id("p", "r")
    assert content_id("p", "r") != content_id("p", "r2")
    assert content_id("p", "r") == "h" + __import__("hashlib").sha256(b'["p", "r"]').hexdigest()[:16]


def test_missing_ids_get_content_hash_and_extra_fields_are_kept():
    rows = validate_instruction_rows([{"prompt": "p", "response": "r", "meta": 1}, {"id": 7, "prompt": "q", "response": "s"}], "x")
    assert rows[0]["id"] == content_id("p", "r") and rows[0]["meta"] == 1
    assert rows[1]["id"] == "7"


def test_duplicate_ids_and_empty_fields_are_named(tmp_path):
    with pytest.raises(InputError, match="duplicate id 'a'"):
        validate_instruction_rows([{"id": "a", "prompt": "p", "response": "r"}] * 2, "f.jsonl")
    with pytest.raises(InputError, match="row 1: field 'response'"):
        validate_instruction_rows([{"prompt": "p", "response": " "}], "f.jsonl")


def test_read_jsonl_names_file_and_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"prompt": "p", "response": "r"}\n\n{oops\n', encoding="utf-8")
    with pytest.raises(InputError, match=r"bad.jsonl:3: invalid JSON"):
        read_jsonl(path)


def test_write_is_atomic_and_round_trips(tmp_path):
    path = tmp_path / "out" / "rows.jsonl"
    write_jsonl(path, [{"id": "1", "text": "é"}])

    def exploding():
        yield {"id": "2"}
        raise RuntimeError("killed midway")

    with pytest.raises(RuntimeError):
        write_jsonl(path, exploding())
    assert read_jsonl(path) == [{"id": "1", "text": "é"}]  # the previous output is intact
    assert [p.name for p in path.parent.iterdir()] == ["rows.jsonl"]  # no temp file left
    assert json.loads(path.read_text(encoding="utf-8")) == {"id": "1", "text": "é"}
