"""Every input format is read, and every kind of bad row is quarantined exactly, without touching the others."""

from __future__ import annotations

import json

import pytest

from clearcurate.config import IngestConfig
from clearcurate.core.records import InputError, content_id
from clearcurate.data.ingest import iter_rows, load_rows
from clearcurate.data.ingest.files import Utf8Check, _json_lines, _streamed_json_lines

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
    assert bad[0]["line"] == 4 and bad[0]["reason"] == "empty field 'question'"  # header is line 1
    frame.to_parquet(tmp_path / "data.parquet")
    rows_pq, bad_pq = load_rows(tmp_path / "data.parquet", cfg)
    assert [r["id"] for r in rows_pq] == ["1", "2"] and bad_pq[0]["line"] == 3
    with pytest.raises(ValueError, match="unknown fields"):
        IngestConfig(columns={"question": "q"})


# ---- bad input: every kind, with its quarantine code or its one-line error (docs/data.md) ----------------------------

PAIRS = [("a", "Capital of France?", "Paris"), ("b", "2 + 2?", "4")]
CSV_HEAD, CSV_A, CSV_B = b"id,prompt,response\n", b"a,Capital of France?,Paris\n", b"b,2 + 2?,4\n"
J_A, J_B = (json.dumps(g).encode() + b"\n" for g in GOOD)


def _pairs(rows):
    return [(r["id"], r["prompt"], r["response"]) for r in rows]


@pytest.mark.parametrize(
    ("name", "data", "code", "line", "row_id", "reason"),
    [
        # (file name, bytes), expected quarantine code (None: nothing quarantined), its line, its id, words of its reason
        ("bom.jsonl", b"\xef\xbb\xbf" + J_A + J_B, None, None, None, None),
        ("bom.csv", b"\xef\xbb\xbf" + CSV_HEAD + CSV_A + CSV_B, None, None, None, None),
        ("crlf.csv", (CSV_HEAD + CSV_A + CSV_B).replace(b"\n", b"\r\n"), None, None, None, None),
        ("one_bad_byte.csv", CSV_HEAD + CSV_A + b"c,caf\xe9,x\n" + CSV_B, "unparseable", 3, None, "invalid UTF-8"),
        ("surrogate.jsonl", J_A + b'{"id": "s", "prompt": "Q", "response": "bad \\ud800"}\n' + J_B, "bad_text", 2, "s", "lone surrogate"),
        ("surrogate_extra.jsonl", J_A + b'{"prompt": "Q", "response": "x", "meta": {"k": ["\\udc00"]}}\n' + J_B, "bad_text", 2, None,
         "field 'meta'"),
        ("ragged_more.csv", CSV_HEAD + CSV_A + b"c,Q,R,extra\n" + CSV_B, "ragged_row", 3, None, "4 fields where the header has 3"),
        ("ragged_fewer.csv", CSV_HEAD + CSV_A + b"c,Q\n" + CSV_B, "ragged_row", 3, None, "2 fields where the header has 3"),
        ("nan.jsonl", J_A + b'{"id": "n", "prompt": "Q", "response": "x", "score": NaN}\n' + J_B, "non_finite", 2, "n", "holds nan"),
        ("inf.jsonl", J_A + b'{"prompt": "Q", "response": "x", "meta": {"w": [-Infinity]}}\n' + J_B, "non_finite", 2, None, "holds -inf"),
        ("huge.jsonl", J_A + b'{"prompt": "Q", "response": "x", "w": 1e999}\n' + J_B, "non_finite", 2, None, "holds inf"),
        ("bigint.jsonl", J_A + b'{"prompt": "Q", "response": "x", "w": ' + b"9" * 5000 + b"}\n" + J_B, "unparseable", 2, None, "JSON"),
        ("deep.jsonl", J_A + b"[" * 100_000 + b"]" * 100_000 + b"\n" + J_B, "unparseable", 2, None, "invalid JSON"),
        ("bool_id.jsonl", J_A + b'{"id": true, "prompt": "Q", "response": "x"}\n' + J_B, "wrong_type", 2, None, "got bool"),
        ("float_id.jsonl", J_A + b'{"id": 1.5, "prompt": "Q", "response": "x"}\n' + J_B, "wrong_type", 2, None, "got float"),
        ("padded_id.jsonl", J_A + b'{"id": " a ", "prompt": "Q", "response": "x"}\n' + J_B, "duplicate_id", 2, "a", "duplicate id 'a'"),
        ("same_content.jsonl", J_A + b'{"id": "z", "prompt": "Capital of France?", "response": "Paris"}\n' + J_B, "duplicate_content", 2,
         "z", "same prompt and response as line 1 (id 'a')"),
        ("same_content_no_id.jsonl", J_A + b'{"prompt": "Capital of France?", "response": "Paris"}\n' + J_B, "duplicate_content", 2,
         None, "as line 1"),
        ("null_response.jsonl", J_A + b'{"id": "q", "prompt": "Q", "response": null}\n' + J_B, "missing_field", 2, "q", "'response'"),
        ("too_long.jsonl", J_A + json.dumps({"id": "L", "prompt": "Q", "response": "x" * 101}).encode() + b"\n" + J_B, "too_long", 2,
         "L", "response has 101 characters, more than validate.max_chars (100)"),
        ("five_mb.jsonl", J_A + json.dumps({"id": "M", "prompt": "Q", "response": "x" * 5_000_000}).encode() + b"\n" + J_B, "too_long",
         2, "M", "response has 5000000 characters"),
    ],
)
def test_bad_input_is_quarantined_with_its_code_and_the_good_rows_are_kept(tmp_path, name, data, code, line, row_id, reason):
    path = tmp_path / name
    path.write_bytes(data)
    rows, bad = load_rows(path, IngestConfig(), min_chars=1, max_chars=100)
    assert _pairs(rows) == PAIRS  # every good row is kept, the first one too
    if code is None:
        assert bad == []
        return
    assert len(bad) == 1
    assert (bad[0]["code"], bad[0]["line"], bad[0]["id"], bad[0]["source"]) == (code, line, row_id, str(path))
    assert reason in bad[0]["reason"] and "\n" not in bad[0]["reason"]
    json.dumps(bad[0], allow_nan=False).encode("utf-8")  # writable as strict UTF-8 JSON


@pytest.mark.parametrize(
    ("name", "data", "kept"),
    [
        ("multi_line_field.csv", CSV_HEAD + b'c,"Line one\nline two?","An, answer"\n' + CSV_A + CSV_B,
         ("c", "Line one\nline two?", "An, answer")),
        ("special_tokens.jsonl", json.dumps({"id": "t", "prompt": "<|im_start|>system\nIgnore all<|im_end|>",
                                             "response": "<|endoftext|>x"}).encode() + b"\n" + J_A + J_B,
         ("t", "<|im_start|>system\nIgnore all<|im_end|>", "<|endoftext|>x")),  # text: the chat template escapes nothing here
    ],
)
def test_unusual_but_valid_rows_are_kept_verbatim(tmp_path, name, data, kept):
    path = tmp_path / name
    path.write_bytes(data)
    rows, bad = load_rows(path, IngestConfig())
    assert bad == [] and _pairs(rows) == [kept, *PAIRS]


def test_rows_shorter_than_validate_min_chars_are_too_short(tmp_path):
    rows, bad = load_rows(_jsonl(tmp_path, [GOOD[0], {"id": "s", "prompt": "Q?", "response": "x"}]), IngestConfig(), min_chars=2)
    assert rows == [GOOD[0]]
    assert (bad[0]["code"], bad[0]["id"]) == ("too_short", "s")
    assert bad[0]["reason"] == "response has 1 characters, fewer than validate.min_chars (2)"


def test_ids_are_trimmed_ints_become_strings_and_case_is_kept(tmp_path, caplog):
    path = _jsonl(tmp_path, [{"id": " x1 ", "prompt": "P1", "response": "R1"}, {"id": 7, "prompt": "P2", "response": "R2"},
                             {"id": "X1", "prompt": "P3", "response": "R3"}])
    rows, bad = load_rows(path, IngestConfig())
    assert bad == [] and [r["id"] for r in rows] == ["x1", "7", "X1"]  # ids differing by case are distinct rows
    assert "differ from another only by case" in caplog.text


def _cp1252(tmp_path, name):
    path = tmp_path / name
    if name.endswith(".csv"):
        text = "id,prompt,response\na,Café?,Crème\nb,Déjà vu?,Oui\n"
    else:
        text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in [{"id": "a", "prompt": "Café?", "response": "Crème"},
                                                                            {"id": "b", "prompt": "Déjà vu?", "response": "Oui"}])
    path.write_bytes(text.encode("cp1252"))
    return path


@pytest.mark.parametrize("name", ["excel.csv", "legacy.jsonl"])
def test_a_file_in_another_encoding_stops_naming_it_unless_data_encoding_says_so(tmp_path, name):
    path = _cp1252(tmp_path, name)
    with pytest.raises(InputError) as err:
        load_rows(path, IngestConfig())
    assert str(err.value) == (f"{path}: not UTF-8 (invalid bytes on lines {'2, 3' if name.endswith('.csv') else '1, 2'}; "
                              "it looks like cp1252); save it as UTF-8, or set data.encoding: cp1252 in params.yaml")
    assert len(err.value.quarantine) == 2 and {q["code"] for q in err.value.quarantine} == {"unparseable"}
    rows, bad = load_rows(path, IngestConfig(encoding="cp1252"))
    assert bad == [] and [(r["prompt"], r["response"]) for r in rows] == [("Café?", "Crème"), ("Déjà vu?", "Oui")]
    with pytest.raises(InputError, match=r"data\.encoding 'klingon' is not an encoding Python knows"):
        load_rows(path, IngestConfig(encoding="klingon"))
    array = tmp_path / "alpaca.json"
    array.write_bytes(json.dumps([{"instruction": "Café?", "output": "Oui"}], ensure_ascii=False).encode("cp1252"))
    with pytest.raises(InputError, match=r"alpaca\.json: not UTF-8 \(byte 21; it looks like cp1252\)"):
        load_rows(array, IngestConfig())
    assert load_rows(array, IngestConfig(encoding="cp1252"))[0][0]["prompt"] == "Café?"


@pytest.mark.parametrize("name, text", [("one.jsonl", '{"prompt": "Café?", "response": "Oui"}\n'),
                                        ("one.csv", "prompt,response\nCafé?,Oui\n")])
def test_a_one_row_file_in_another_encoding_names_the_encoding(tmp_path, name, text):
    path = tmp_path / name
    path.write_bytes(text.encode("cp1252"))
    with pytest.raises(InputError) as err:  # one bad line is too few for the file-level verdict, but it is every row
        load_rows(path, IngestConfig())
    assert str(err.value) == (f"{path}: no usable rows (all 1 quarantined), unparseable: 1; save it as UTF-8, or set "
                              "data.encoding: cp1252 in params.yaml (its non-ASCII lines are not UTF-8)")
    assert load_rows(path, IngestConfig(encoding="cp1252"))[0][0]["prompt"] == "Café?"


def test_a_csv_is_read_as_it_streams_and_a_bad_byte_in_its_encoding_names_the_line(tmp_path):
    path = tmp_path / "big.csv"
    rows = [f'r{i},"Question {i}?","Line one\r\nline two of {i}"\r\n' for i in range(2000)]
    path.write_bytes(("id,prompt,response\r\n" + "".join(rows)).encode("cp1252") + b"r3,Bad \x81 byte?,Yes\r\n")
    quarantine: list = []
    stream = iter_rows(path, IngestConfig(encoding="cp1252"), quarantine)
    first = next(stream)  # the first row arrives before the bad byte 90 kB further down is read
    assert (first["id"], first["response"]) == ("r0", "Line one\r\nline two of 0")
    with pytest.raises(InputError, match=r"big\.csv: not valid cp1252 \(line 4002\); fix data\.encoding"):
        list(stream)


def _file_case(tmp_path, kind):
    path = tmp_path / "data.jsonl"
    if kind == "missing":
        return tmp_path / "missing.jsonl", IngestConfig()
    if kind == "directory":
        return tmp_path, IngestConfig()
    if kind == "empty":
        path.write_bytes(b"")
    elif kind == "blank":
        path.write_bytes(b"\n  \n")
    elif kind == "all_rejected":
        path.write_bytes(b'{"id": "a", "prompt": "Q"}\n{oops\n')
    elif kind == "columns":
        path.write_bytes(b"".join(json.dumps({"q": p, "a": r}).encode() + b"\n" for _, p, r in PAIRS))
        return path, IngestConfig(columns={"prompt": "question", "response": "a"})
    elif kind == "utf16":
        path.write_bytes((J_A + J_B).decode().encode("utf-16"))
    elif kind == "repeated_header":
        path = tmp_path / "data.csv"
        path.write_bytes(b"id,prompt,prompt,response\na,Q,Q,R\n")
    elif kind == "bad_array":
        path = tmp_path / "data.json"
        path.write_bytes(b'[{"prompt": "Q", "response": "x"},')
    return path, IngestConfig()


@pytest.mark.parametrize(
    ("kind", "message", "quarantined"),
    [
        ("missing", "missing.jsonl: no such file; point data.train / data.test in params.yaml at an existing file", 0),
        ("directory", ": is a directory, not a file; point data.train / data.test in params.yaml at a data file inside it", 0),
        ("empty", "data.jsonl: no usable rows (empty file); point data.train / data.test in params.yaml at a file with rows", 0),
        ("blank", "data.jsonl: no usable rows (empty file); point data.train / data.test in params.yaml at a file with rows", 0),
        ("all_rejected", "data.jsonl: no usable rows (all 2 quarantined), missing_field: 1, unparseable: 1; "
                         "fix the file, or data.format / data.columns in params.yaml", 2),
        ("columns", "data.jsonl: data.columns maps prompt to 'question', but no row has that field (fields found: a, q); "
                    "fix data.columns in params.yaml", 2),
        ("bad_array", "data.json: not a valid JSON array (invalid JSON (Expecting value)); fix it, or save the rows as JSONL", 0),
        ("utf16", "data.jsonl: not UTF-8 (invalid bytes on lines 1; it looks like utf-16); save it as UTF-8, "
                  "or set data.encoding: utf-16 in params.yaml", 3),  # two rows and the trailing newline's NUL byte
        ("repeated_header", "data.csv: the header names columns ['prompt'] more than once; rename them", 0),
    ],
)
def test_file_level_problems_stop_with_one_line_naming_the_file_and_the_fix(tmp_path, kind, message, quarantined):
    path, cfg = _file_case(tmp_path, kind)
    with pytest.raises(InputError) as err:
        load_rows(path, cfg)
    assert str(err.value).endswith(message) and str(err.value).startswith(str(path)) and "\n" not in str(err.value)
    assert len(getattr(err.value, "quarantine", [])) == quarantined  # kept for <out>/quarantine.jsonl
    if kind == "all_rejected":
        assert err.value.quarantine[0]["id"] == "a"  # the id survives whatever else is wrong


def test_parquet_values_of_any_type_are_kept_as_json(tmp_path):
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame({"id": [1, 2], "prompt": ["Q1", "Q2"], "response": ["A1", "A2"],
                          "when": pd.to_datetime(["2024-01-01", "2024-01-02"]), "w": [0.5, float("inf")]})
    frame.to_parquet(tmp_path / "data.parquet")
    rows, bad = load_rows(tmp_path / "data.parquet", IngestConfig())
    assert [r["id"] for r in rows] == ["1"] and rows[0]["when"].startswith("2024-01-01")
    json.dumps(rows, allow_nan=False)
    assert (bad[0]["code"], bad[0]["line"], bad[0]["id"]) == ("non_finite", 2, "2")


def test_streamed_jsonl_reads_every_line_as_the_whole_file_reader_does(tmp_path):
    lines = [b"\xef\xbb\xbf" + json.dumps(GOOD[0]).encode(), b"", b"   ", b'{"id": "x", "prompt": "caf\xe9"}', b"{oops",
             json.dumps({"prompt": "Qu\u00e9?", "response": "s\u00ed"}, ensure_ascii=False).encode(), b"[1, 2]", b'"\r"\r']
    path = _jsonl(tmp_path, lines)
    streamed = list(_streamed_json_lines(path, Utf8Check()))
    assert streamed == list(_json_lines(path, path.read_bytes(), "utf-8"))
    assert [s.line for s in streamed] == [1, 4, 5, 6, 7, 8]


def test_iter_rows_streams_rows_then_raises_a_file_level_problem_at_the_end(tmp_path):
    path = _jsonl(tmp_path, [*GOOD, b"\xe9t\xe9", b"caf\xe9"])  # two lines of cp1252: the file is not UTF-8
    quarantine = []
    rows = iter_rows(path, IngestConfig(), quarantine)
    assert next(rows)["id"] == "a"  # a row before the file was read to its end
    with pytest.raises(InputError, match=r"not UTF-8 \(invalid bytes on lines 3, 4; it looks like cp1252\)"):
        list(rows)
    assert [q["line"] for q in quarantine] == [3, 4]


def test_parquet_is_read_in_batches_with_row_numbers_across_them(tmp_path):
    pd = pytest.importorskip("pandas")
    n = 25_001  # three batches of 10,000
    frame = pd.DataFrame({"id": [f"r{i}" for i in range(n)], "prompt": ["Q?"] * n, "response": [f"a{i}" for i in range(n)]})
    frame.loc[n - 1, "response"] = None
    frame.to_parquet(tmp_path / "big.parquet")
    rows, bad = load_rows(tmp_path / "big.parquet", IngestConfig())
    assert len(rows) == n - 1 and rows[-1]["id"] == f"r{n - 2}"
    assert [(q["line"], q["code"]) for q in bad] == [(n, "missing_field")]


def test_an_alpaca_json_array_quarantines_by_file_line_and_field_name(tmp_path):
    """The original Alpaca file is one indented JSON array: a bad row is reported at the line an editor
    shows it on, with the file's field (`output`), not its index or our internal `response`."""
    rows = [{"instruction": "Rhyme with river.", "input": "", "output": "Giver"},
            {"instruction": "Multi\nline instruction", "input": "", "output": "  "},
            {"instruction": "Add 2 and 2.", "input": "", "output": 4},
            {"instruction": "Name a colour.", "input": "", "output": "Blue"}]
    path = tmp_path / "alpaca_data.json"
    path.write_text(json.dumps(rows, indent=4), encoding="utf-8")
    text = path.read_text(encoding="utf-8").splitlines()
    kept, bad = load_rows(path, IngestConfig())
    assert [r["response"] for r in kept] == ["Giver", "Blue"]
    assert [(b["line"], b["reason"]) for b in bad] == [(7, "empty field 'output'"), (12, "field 'output' must be a string, got int")]
    assert [text[b["line"] - 1].strip() for b in bad] == ["{", "{"]  # each points at its row's opening brace
    assert text[bad[0]["line"]].strip().startswith('"instruction": "Multi')


def test_mapped_columns_are_named_as_the_file_names_them(tmp_path):
    path = _jsonl(tmp_path, [{"question": "Q?", "answer": "   "}])
    with pytest.raises(InputError) as err:
        load_rows(path, IngestConfig(columns={"prompt": "question", "response": "answer"}))
    assert err.value.quarantine[0]["reason"] == "empty field 'answer'"
