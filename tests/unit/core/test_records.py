import json

import pytest

from clearcurate.core.records import (
    InputError,
    atomic_jsonl,
    content_id,
    iter_jsonl,
    read_jsonl,
    write_jsonl,
)


def test_content_id_is_stable_and_content_sensitive():
    assert content_id("p", "r") == content_id("p", "r")
    assert content_id("p", "r") != content_id("p", "r2")
    assert content_id("p", "r") == "h" + __import__("hashlib").sha256(b'["p", "r"]').hexdigest()[:16]


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


def test_atomic_dir_leaves_nothing_half_written(tmp_path):
    from clearcurate.core.records import atomic_dir

    target = tmp_path / "adapter"
    with atomic_dir(target) as tmp:
        (tmp / "weights.bin").write_bytes(b"v1")
    assert (target / "weights.bin").read_bytes() == b"v1"
    with pytest.raises(RuntimeError), atomic_dir(target) as tmp:
        (tmp / "weights.bin").write_bytes(b"v2, cut short")
        raise RuntimeError("killed while writing")
    assert (target / "weights.bin").read_bytes() == b"v1"  # the previous output, intact
    assert sorted(p.name for p in tmp_path.iterdir()) == ["adapter"]  # no temporary left behind


def test_iter_jsonl_yields_rows_before_it_reaches_a_bad_line(tmp_path):
    path = tmp_path / "rows.jsonl"
    path.write_text('{"id": 1}\n\n{"id": 2}\nnot json\n', encoding="utf-8")
    rows = iter_jsonl(path)
    assert next(rows) == {"id": 1} and next(rows) == {"id": 2}  # streamed: the bad line is not read yet
    with pytest.raises(InputError, match=r"rows\.jsonl:4: invalid JSON"):
        next(rows)


def test_atomic_jsonl_renames_only_a_complete_file_and_keeps_the_old_one_on_failure(tmp_path):
    path = tmp_path / "out" / "rows.jsonl"
    with atomic_jsonl(path) as out:
        out.write({"id": "a"})
        out.write({"id": "b", "text": "é"})
        assert not path.exists()  # nothing in place until the block ends
    assert out.count == 2 and read_jsonl(path) == [{"id": "a"}, {"id": "b", "text": "é"}]
    with pytest.raises(RuntimeError, match="gate failed"), atomic_jsonl(path) as out:
        out.write({"id": "c"})
        raise RuntimeError("gate failed")
    assert read_jsonl(path) == [{"id": "a"}, {"id": "b", "text": "é"}]
    assert [p.name for p in path.parent.iterdir()] == ["rows.jsonl"]  # no temp file left behind


def test_progress_passes_every_row_through_with_or_without_a_bar(monkeypatch):
    from clearcurate.core.records import progress, show_progress

    rows = [{"id": str(i)} for i in range(5)]
    for setting in ("0", "1"):
        monkeypatch.setenv("CLEARCURATE_PROGRESS", setting)
        assert show_progress() is (setting == "1")
        assert list(progress(iter(rows), "read", total=5)) == rows
