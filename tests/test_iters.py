"""`traceconv iters`: the SGLang scheduler-log parser (analyzers.sglang_log), the iteration-id
checks (analyzers.iterations) and the CLI, against the simulated logs of
fixtures/make_sglang_logs.py (ground truth from the simulated scheduler, not from parsing)."""

from __future__ import annotations

import gzip
import importlib.util
import io
import json
import math
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analyzers import iterations, sglang_log
from traceconv.cli import main

ROOT = Path(__file__).resolve().parents[1]
LOGS = ROOT / "fixtures" / "logs"


def _load_generator():
    spec = importlib.util.spec_from_file_location("make_sglang_logs", ROOT / "fixtures" / "make_sglang_logs.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("make_sglang_logs", mod)
    spec.loader.exec_module(mod)
    return mod


gen = _load_generator()


def _read(path: Path) -> bytes:
    data = path.read_bytes()
    return gzip.decompress(data) if path.suffix == ".gz" else data


def _truth_rows(truth: dict) -> dict[int, tuple]:
    """line → (stream, kind, logged id, true id, reason)."""
    return {r[0]: tuple(r[1:]) for r in truth["batch_lines"]}


def _compare(res: iterations.Findings, truth: dict) -> None:
    """Every wrong line is flagged with its reason; no correct line is flagged."""
    want = {line: r[4] for line, r in _truth_rows(truth).items() if r[4] is not None}
    got = dict(zip(res.findings["line"].tolist(), res.findings["reason"].tolist()))
    assert len(got) == len(res.findings), "one finding per line"
    missed = {k: v for k, v in want.items() if k not in got}
    extra = {k: v for k, v in got.items() if k not in want}
    wrong = {k: (want[k], got[k]) for k in want if k in got and got[k] != want[k]}
    assert not missed, f"wrong lines not flagged: {list(missed.items())[:10]}"
    assert not extra, f"correct lines flagged: {list(extra.items())[:10]}"
    assert not wrong, f"(truth, got) reasons differ: {list(wrong.items())[:10]}"
    assert res.classification == truth["expected_classification"]


def _check_run(run, **kw) -> iterations.Findings:
    df = sglang_log.parse_lines(run.lines)
    assert len(df) == run.truth["n_batch_lines"]
    return iterations.check(df, **kw)


# ---- the parser ------------------------------------------------------------------------------


def _same(got, want) -> bool:
    if want is None:
        return got is None or got is pd.NA or (isinstance(got, float) and math.isnan(got)) or pd.isna(got)
    if isinstance(want, float):
        return not pd.isna(got) and math.isclose(float(got), want)
    if isinstance(got, str) or isinstance(want, str):
        return str(got) == str(want)
    return got == want


def test_every_format_variant_parses_as_written_down():
    data = (LOGS / "edge_cases.log").read_bytes()
    truth = json.loads((LOGS / "edge_cases.truth.json").read_text())
    df = sglang_log.parse_text(data)
    assert sorted(df["line"]) == sorted(int(k) for k in truth["batch_lines"])
    assert df.attrs["stats"]["lines"] == truth["n_lines"]
    rows = df.set_index("line")
    for k, want in truth["batch_lines"].items():
        row = rows.loc[int(k)]
        for col, v in want.items():
            if col == "stream":
                continue
            got = row[col] if col in row.index else "<absent>"
            if col == "ts" and v is not None:
                assert got == pd.Timestamp(v), (k, col, got, v)
            else:
                assert _same(got, v), f"line {k} {col}: got {got!r}, want {v!r}"


def test_columns_and_types():
    df = sglang_log.parse_text((LOGS / "edge_cases.log").read_bytes())
    assert list(df.columns[:9]) == ["line", "ts", "dp", "pp", "tp", "ep", "attn_cp", "moe_dp", "kind"]
    assert df["line"].dtype == np.int64
    assert str(df["ts"].dtype) == "datetime64[ns]"
    for c in ("dp", "pp", "tp", "ep", "attn_cp", "iter", "new_token", "running_req"):
        assert str(df[c].dtype) == "Int64", c
    assert df["kind"].dtype == pd.CategoricalDtype(["prefill", "decode"])
    assert str(df["accept_len"].dtype) == "float64"
    assert str(df["npu_graph"].dtype) == "boolean"
    assert str(df["fwd_occupancy"].dtype) == "float64"  # "93.1%" → 93.1
    assert str(df["token_usage"].dtype) == "string"  # one line says "n/a": the column stays text
    assert df.columns[-1] == "extra"
    assert df.attrs["fields"]["gen_throughput_token_s"] == "gen throughput (token/s)"
    assert "attn_cp" in df.attrs["ranks"] and "moe_dp" in df.attrs["ranks"]


def test_simulated_logs_parse_completely():
    run = gen.simulate(5, n_batches=600, dp_size=2, pp_size=2, ms=True, style="mfu")
    df = sglang_log.parse_lines(run.lines, keep_text=True)
    rows = _truth_rows(run.truth)
    assert df["line"].tolist() == sorted(rows)
    assert df["iter"].tolist() == [rows[k][2] for k in df["line"]]
    assert (df["kind"].astype(str).str[0].str.upper() == [rows[k][1] for k in df["line"]]).all()
    assert df["extra"].isna().all()
    assert df["text"].str.contains("#").all()
    assert df.attrs["server_args"]["disable_overlap_schedule"] == "False"
    assert df.attrs["server_starts"] == [1]
    assert df["ts"].notna().all() and (df["ts"].dt.microsecond % 1000 == 0).all()


def test_block_boundaries_and_worker_processes_give_the_same_frame(monkeypatch):
    run = gen.simulate(9, n_batches=2500, dp_size=2, style="spec")
    data = ("\n".join(run.lines) + "\n").encode()
    ref = sglang_log.parse_log(io.BytesIO(data), workers=1)
    small = sglang_log.parse_log(io.BytesIO(data), block_size=4099, workers=1)
    pd.testing.assert_frame_equal(ref, small)
    pools = []
    real_pool = sglang_log._pool
    monkeypatch.setattr(sglang_log, "_pool", lambda *a: pools.append(a) or real_pool(*a))
    monkeypatch.setattr(sglang_log, "FIRST_BLOCK", 8 << 10)
    pooled = sglang_log.parse_log(io.BytesIO(data), block_size=16 << 10, workers=2)
    assert pools, "the worker processes were not used"
    pd.testing.assert_frame_equal(ref, pooled)
    assert pooled.attrs["stats"] == ref.attrs["stats"]
    assert pooled.attrs["fields"] == ref.attrs["fields"]


@pytest.mark.parametrize("compress", ["gzip", "zstd"])
def test_compressed_logs(compress):
    data = (LOGS / "edge_cases.log").read_bytes()
    if compress == "gzip":
        packed = gzip.compress(data)
    else:
        import zstandard

        packed = zstandard.ZstdCompressor().compress(data)
    a = sglang_log.parse_log(io.BytesIO(packed))
    b = sglang_log.parse_text(data)
    pd.testing.assert_frame_equal(a, b)


def test_crlf_and_no_final_newline():
    run = gen.simulate(2, n_batches=200)
    text = "\r\n".join(run.lines)
    df = sglang_log.parse_text(text)
    assert len(df) == run.truth["n_batch_lines"]
    assert df["extra"].isna().all()
    assert not df["queue_req"].isna().any()


def test_garbage_never_raises(monkeypatch):
    rng = np.random.default_rng(0)
    monkeypatch.setattr(sglang_log, "MAX_LINE", 1 << 20)
    good = b"[2026-09-10 14:03:21 TP0] Decode batch [7], #running-req: 4, #token: 9, cuda graph: True\n"
    parts = [good]
    for i in range(60):
        junk = rng.integers(0, 256, int(rng.integers(0, 5000)), dtype=np.uint8).tobytes()
        if i % 7 == 0:
            junk = b"[2026-09-10 14:03:21 TP0] Prefill batch [" + junk
        if i % 11 == 0:
            junk = b"[2026-09-10 14:03:21 TP0] Decode batch, " + junk.replace(b"\n", b"")
        parts.append(junk + b"\n")
    parts.append(b"y" * (3 << 20) + b"\n")  # longer than MAX_LINE: skipped
    parts.append(b"[2026-09-10 14:03:22 TP0] Decode batch, " + b"#token: 1, " * 100_000 + b"\n")  # 1 MB batch line
    parts.append(good)
    parts.append(b"\x00" * 1000)  # no final newline
    data = b"".join(parts)
    for block in (sglang_log.BLOCK, 1 << 16):
        df = sglang_log.parse_log(io.BytesIO(data), block_size=block)
        assert df["line"].is_monotonic_increasing
        assert (df["iter"].dropna() >= 0).all()
        assert df.attrs["stats"]["skipped"] >= 1
        assert df.attrs["stats"]["lines"] == data.count(b"\n") + 1
        res = iterations.check(df)
        assert isinstance(res.verdict(), str)


def test_no_batch_lines_gives_an_empty_typed_frame():
    df = sglang_log.parse_text(b"hello\n[2026-09-10 14:03:21] INFO: nothing here\n")
    assert len(df) == 0 and {"line", "ts", "kind", "iter", "extra"} <= set(df.columns)
    assert iterations.check(df).classification == iterations.NO_IDS


def test_field_column_names():
    f = sglang_log.field_column
    assert f("#new-seq") == "new_seq"
    assert f("gen throughput (token/s)") == "gen_throughput_token_s"
    assert f("est. read BW (GB/s per GPU)") == "est_read_bw_gb_s_per_gpu"
    assert f("#line") == "f_line"


# ---- the checks on simulated logs --------------------------------------------------------------

SIM = sorted(p for p in LOGS.iterdir() if ".truth." not in p.name and p.name.startswith(("overlap_", "sync_")))


@pytest.mark.parametrize("path", SIM, ids=lambda p: p.name)
def test_committed_logs_every_wrong_line_flagged_and_no_other(path):
    truth = json.loads((LOGS / (path.name.split(".log")[0] + ".truth.json")).read_text())
    df = sglang_log.parse_text(_read(path))
    res = iterations.check(df)
    _compare(res, truth)
    if truth["params"]["labelling"] == "fixed":
        assert len(res.findings) == 0


CONFIGS = [
    dict(seed=11, overlap=True, labelling="old", decode_log_interval=40),
    dict(seed=12, overlap=True, labelling="old", decode_log_interval=1, ms=True),
    dict(seed=13, overlap=True, labelling="old", decode_log_interval=3, dp_size=2, pp_size=2),
    dict(seed=14, overlap=True, labelling="old", decode_log_interval=8, server_args_line=False),
    dict(seed=15, overlap=True, labelling="old", decode_log_interval=8, workload=dict(rate=2.0, quiet_p=0.9)),
    dict(seed=16, overlap=True, labelling="old", decode_log_interval=5, workload=dict(rate=30.0, quiet_p=0.1), style="pd"),
    dict(seed=17, overlap=False, labelling="old", decode_log_interval=16, style="old"),
    dict(seed=18, overlap=False, labelling="old", decode_log_interval=2, dp_size=2),
    dict(seed=21, overlap=True, labelling="fixed", decode_log_interval=40),
    dict(seed=22, overlap=True, labelling="fixed", decode_log_interval=1, dp_size=2, pp_size=2, ms=True),
    dict(seed=23, overlap=True, labelling="fixed", decode_log_interval=8, workload=dict(rate=2.0, quiet_p=0.9)),
    dict(seed=24, overlap=False, labelling="fixed", decode_log_interval=4, server_args_line=False),
]


@pytest.mark.parametrize("kw", CONFIGS, ids=lambda kw: "-".join(f"{k}={v}" for k, v in kw.items() if k != "workload"))
def test_simulated_scheduler(kw):
    run = gen.simulate(n_batches=1500, **kw)
    res = _check_run(run)
    _compare(res, run.truth)
    if kw["labelling"] == "fixed":
        assert len(res.findings) == 0 and res.classification == iterations.CONSISTENT


def test_reasons_and_evidence():
    run = gen.simulate(31, n_batches=2000, overlap=True, labelling="old", decode_log_interval=4, dp_size=2)
    res = _check_run(run)
    f = res.findings
    assert set(f["reason"]) <= set(iterations.REASONS)
    assert {iterations.DUPLICATE_ID, iterations.PREFILL_AHEAD, iterations.OVERLAP_SHIFT} <= set(f["reason"])
    assert (f["evidence"] == f["reason"].map(iterations.EVIDENCE)).all()
    assert list(f.columns) == iterations.FINDING_COLUMNS
    assert (f["expected"] != f["got"]).all()
    shift = f[f["reason"] == iterations.OVERLAP_SHIFT]
    assert ((shift["got"] - shift["expected"]) == 1).all() and (shift["kind"] == "decode").all()
    ahead = f[f["reason"] == iterations.PREFILL_AHEAD]
    assert (ahead["got"] - ahead["expected"]).isin([1, 2]).all() and (ahead["kind"] == "prefill").all()
    s = res.summary
    assert s["findings"] == len(f) and sum(s["by_reason"].values()) == len(f)
    assert s["decode_log_interval"] == 4 and s["interval_source"] == "server_args"
    v = res.verdict()
    assert v.startswith(f"{s['lines']} lines, {len(f)} findings (") and v.endswith("pre-fix overlap labelling")
    # the inferred iteration of every line is the simulated one
    rows = _truth_rows(run.truth)
    df = sglang_log.parse_lines(run.lines)
    assert res.expected_iter.tolist() == [rows[k][3] for k in df["line"]]


def test_interval_given_or_inferred():
    run = gen.simulate(32, n_batches=1500, overlap=True, labelling="old", decode_log_interval=6, server_args_line=False)
    df = sglang_log.parse_lines(run.lines)
    inferred = iterations.check(df)
    given = iterations.check(df, decode_log_interval=6)
    assert inferred.summary["interval_source"] == "inferred" and inferred.summary["decode_log_interval"] == 6
    assert given.summary["interval_source"] == "given"
    pd.testing.assert_frame_equal(inferred.findings, given.findings)
    _compare(given, run.truth)
    wrong = iterations.check(df, decode_log_interval=7)  # a wrong interval cannot explain the gaps
    assert wrong.classification == iterations.INCONSISTENT
    assert min(wrong.summary["violations"].values()) > 0.01 * len(df)


def _edit_id(lines: list[str], index: int, new: int) -> list[str]:
    import re

    out = list(lines)
    out[index] = re.sub(r"batch \[\d+\]", f"batch [{new}]", out[index], count=1)
    return out


def test_corrupted_fixed_logs_are_proven_wrong_on_the_line():
    run = gen.simulate(33, n_batches=1500, overlap=True, labelling="fixed", decode_log_interval=4)
    rows = run.truth["batch_lines"]
    decodes = [r for r in rows if r[2] == "D"][10:]
    a, b, c = decodes[5], decodes[20], decodes[40]
    lines = _edit_id(run.lines, a[0] - 1, a[3] + 2)  # gap to its neighbours no longer fits
    prev_b = max(r[3] for r in rows if r[0] < b[0])
    lines = _edit_id(lines, b[0] - 1, prev_b)  # the same id as the line before it
    lines = _edit_id(lines, c[0] - 1, c[3] - 30)  # backwards
    res = iterations.check(sglang_log.parse_lines(lines))
    assert res.classification == iterations.INCONSISTENT
    f = res.findings.set_index("line")
    assert f.loc[a[0], "reason"] in (iterations.GAP_MISMATCH, iterations.NON_INCREASING)
    assert f.loc[b[0], "reason"] == iterations.DUPLICATE_ID
    assert f.loc[c[0], "reason"] == iterations.NON_INCREASING
    assert (f["evidence"] == "proven").all()
    assert len(f) <= 6  # only around the three edits


def test_missing_ids_and_no_ids():
    run = gen.simulate(34, n_batches=800, overlap=True, labelling="fixed", decode_log_interval=4)
    import re

    lines = list(run.lines)
    drop = [r[0] for r in run.truth["batch_lines"][5:40:7]]
    for k in drop:
        lines[k - 1] = re.sub(r" \[\d+\]", "", lines[k - 1], count=1)
    res = iterations.check(sglang_log.parse_lines(lines))
    assert sorted(res.findings["line"]) == drop
    assert set(res.findings["reason"]) == {iterations.MISSING_ID}
    assert res.classification == iterations.CONSISTENT
    bare = gen.simulate(34, n_batches=300, log_iters=False)
    res = iterations.check(sglang_log.parse_lines(bare.lines))
    assert res.classification == iterations.NO_IDS and len(res.findings) == 0
    assert "SGLANG_LOG_FORWARD_ITERS" in res.summary["evidence"]


def test_restarts_and_several_files():
    a = gen.simulate(35, n_batches=700, overlap=True, labelling="fixed", decode_log_interval=4)
    b = gen.simulate(36, n_batches=700, overlap=True, labelling="fixed", decode_log_interval=4, start_ns=gen.START_NS + 3600 * 10**9)
    both = sglang_log.parse_lines(a.lines + b.lines)  # a restart: ids begin again at 1
    res = iterations.check(both)
    assert len(res.findings) == 0 and res.classification == iterations.CONSISTENT
    assert res.summary["streams"] == 2
    old = gen.simulate(37, n_batches=1500, overlap=True, labelling="old", decode_log_interval=4)
    frames = [sglang_log.parse_lines(a.lines), sglang_log.parse_lines(old.lines)]
    res = iterations.check(sglang_log.concat_logs(frames, ["a.log", "old.log"]))
    assert list(res.findings.columns[:2]) == ["file", "line"]
    assert set(res.findings["file"]) == {"old.log"}
    assert res.classification == iterations.PRE_FIX
    assert res.summary["model"] == {"a.log": "fixed", "old.log": "prefix_overlap"}


def test_reason_rule():
    r = iterations.reason_for
    assert r(5, 5, 7, "prefill") == iterations.DUPLICATE_ID
    assert r(5, 3, 5, "decode") == iterations.DUPLICATE_ID
    assert r(4, 5, 7, "decode") == iterations.NON_INCREASING
    assert r(9, 5, 7, "decode") == iterations.NON_INCREASING
    assert r(6, 5, 7, "prefill") == iterations.PREFILL_AHEAD
    assert r(6, 5, 7, "decode") == iterations.OVERLAP_SHIFT
    assert r(None, 5, 7, "decode") == iterations.MISSING_ID
    assert gen.reason_for(6, 5, 7, "P") == iterations.PREFILL_AHEAD  # the generator's copy agrees


def test_parse_tz():
    p = iterations.parse_tz
    assert p("+08:00") == 8 * 3600 and p("-05:30") == -(5 * 3600 + 1800) and p("UTC") == 0
    assert p("auto") is None and p(None) is None and p("+0100") == 3600 and p(7200) == 7200
    with pytest.raises(ValueError):
        p("tomorrow")


# ---- trace line-up (synthetic step frames, as analyzers.steps.trace_steps documents them) ------


def _steps(run, stream: str, lo: int, hi: int, *, iteration: bool = True, rank: str | None = None) -> pd.DataFrame:
    st = pd.DataFrame([s for s in run.steps[stream] if lo <= s["iteration"] < hi])
    st["step_index"] = np.arange(len(st))
    if not iteration:
        st["iteration"] = pd.array([pd.NA] * len(st), dtype="Int64")
    cols = ["step_index", "ts_ns", "end_ns", "mode", "iteration"]
    if rank is not None:
        st["rank"] = rank
        cols.append("rank")
    return st[cols]


@pytest.mark.parametrize("iteration", [True, False], ids=["ProfilerStep", "no-iteration"])
def test_trace_confirms_pre_fix_lines_and_fits_the_zone(iteration):
    run = gen.simulate(41, n_batches=1500, overlap=True, labelling="old", decode_log_interval=4, ms=True, tz_offset_s=8 * 3600)
    steps = _steps(run, run.truth["streams"][0], 500, 800, iteration=iteration)
    res = _check_run(run, trace_steps=steps)
    tr = res.summary["trace"]
    assert tr["log_tz_s"] == 8 * 3600 and tr["log_tz_fitted"]
    # a report comes after batch k+1 may have been launched: the trace allows k and k+1, so
    # it proves wrong the ids two ahead (prefill) and leaves the others to the log's evidence
    assert tr["lines_on_trace"] > 50 and tr["confirmed"] > 10
    assert tr["contradicted"] == 0 and tr["trace_mismatches"] == 0
    _compare(res, run.truth)
    on = res.findings[res.findings["evidence"] == "trace"]
    assert len(on) == tr["confirmed"]
    rows = _truth_rows(run.truth)
    assert (on["expected"] == [rows[k][3] for k in on["line"]]).all()


def test_trace_finds_what_the_log_alone_cannot():
    # short, no start-up line: the log alone cannot tell the shift (classified consistent)
    run = gen.simulate(102, n_batches=300, overlap=True, labelling="old", decode_log_interval=40, dp_size=2,
                       server_args_line=False, ms=True)
    alone = _check_run(run)
    assert alone.classification == iterations.CONSISTENT and len(alone.findings) == 0
    stream = run.truth["streams"][0]
    steps = _steps(run, stream, 1, 300, rank="DP0-TP0")
    res = _check_run(run, trace_steps=steps, log_tz="UTC")
    # the steps rule out the ids as iterations: the file is pre-fix (both DP streams)
    assert res.summary["model"] == "prefix_overlap"
    _compare(res, run.truth)
    f = res.findings
    assert res.summary["trace"]["stream"] == stream and res.summary["trace"]["confirmed"] > 5
    on = f[f["evidence"] == "trace"]
    assert set(on["stream"]) == {stream}
    rows = _truth_rows(run.truth)
    assert (on["expected"] == [rows[k][3] for k in on["line"]]).all()


def test_trace_on_a_fixed_log_and_a_wrong_zone():
    run = gen.simulate(42, n_batches=1500, overlap=True, labelling="fixed", decode_log_interval=4, ms=True, tz_offset_s=-5 * 3600)
    steps = _steps(run, run.truth["streams"][0], 400, 900, iteration=False)
    res = _check_run(run, trace_steps=steps)
    assert len(res.findings) == 0 and res.summary["trace"]["lines_on_trace"] > 50
    assert res.summary["trace"]["log_tz_s"] == -5 * 3600
    off = _check_run(run, trace_steps=steps, log_tz="+02:00")
    assert off.summary["trace"]["note"] == "no log line falls on the trace"
    assert len(off.findings) == 0


def test_check_takes_a_trace_object():
    traces = sorted((ROOT / "fixtures" / "kineto" / "gpu").glob("*.trace.json.gz"))
    if not traces or importlib.util.find_spec("analyzers.steps") is None:
        pytest.skip("needs the Kineto fixtures and analyzers.steps")
    import traceconv

    trace = traceconv.read_trace([str(traces[0])])
    df = sglang_log.parse_text((LOGS / "overlap_old_ms.log").read_bytes())
    res = iterations.check(df, trace=trace)
    assert res.summary["trace"]["steps"] > 0
    assert res.summary["trace"]["note"] == "no log line falls on the trace"  # another run's trace
    assert res.classification == iterations.PRE_FIX


# ---- the CLI -----------------------------------------------------------------------------------


def _run(argv, capsys):
    rc = main(["iters", *argv])
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return rc, out, err


def test_cli_findings_table_and_verdict(capsys):
    rc, out, err = _run([str(LOGS / "overlap_old_dp2pp2.log.gz")], capsys)
    assert rc == 0
    assert out.splitlines()[0].split()[:4] == ["line", "stream", "kind", "reason"]
    assert "prefill_ahead" in out and "overlap_shift" in out
    assert "findings (" in err and "pre-fix overlap labelling" in err


def test_cli_no_findings(capsys):
    rc, out, err = _run([str(LOGS / "overlap_fixed_dp2pp2.log.gz")], capsys)
    assert rc == 0 and out.strip() == "no findings"
    assert "0 findings — consistent" in err


def test_cli_gate_exit_codes(capsys, tmp_path):
    rc, out, err = _run([str(LOGS / "sync_old.log"), "--fail-on-findings", "--format", "csv"], capsys)
    assert rc == 3 and out.startswith("line,stream,kind,reason,expected,got,evidence,message")
    assert "gate:" in err
    rc, out, err = _run([str(LOGS / "sync_fixed_ms.log"), "--fail-on-findings"], capsys)
    assert rc == 0
    junk = tmp_path / "not_a_log.txt"
    junk.write_text("hello\n")
    rc, out, err = _run([str(junk)], capsys)
    assert rc == 1 and err.startswith("error: ") and "Decode batch" in err
    rc, out, err = _run([str(LOGS / "sync_old.log"), "--log-tz", "bogus"], capsys)
    assert rc == 2


def test_cli_formats(capsys, tmp_path):
    log = str(LOGS / "overlap_old_ms.log")
    rc, out, err = _run([log, "--format", "json"], capsys)
    rows = json.loads(out)
    assert rc == 0 and rows and set(rows[0]) == set(iterations.FINDING_COLUMNS)
    pq = tmp_path / "f.parquet"
    rc, out, err = _run([log, "-o", str(pq)], capsys)
    assert rc == 0 and out == "" and f"Wrote {pq}" in err
    back = pd.read_parquet(pq)
    assert len(back) == len(rows)
    rc, out, err = _run([str(LOGS / "sync_fixed_ms.log"), "--format", "json"], capsys)
    assert rc == 0 and json.loads(out) == []


def test_cli_stdin_gzip_and_several_files(capsys, monkeypatch):
    data = (LOGS / "overlap_old_dp2pp2.log.gz").read_bytes()

    class Stdin:
        buffer = io.BytesIO(data)

    monkeypatch.setattr(sys, "stdin", Stdin())
    rc, out, err = _run(["-", "--format", "csv", "--fail-on-findings"], capsys)
    assert rc == 3 and len(out.splitlines()) > 100
    rc, out, err = _run([str(LOGS / "sync_fixed_ms.log"), str(LOGS / "sync_old.log"), "--format", "csv"], capsys)
    assert rc == 0 and out.startswith("file,line,")
    assert {line.split(",")[0] for line in out.splitlines()[1:]} == {str(LOGS / "sync_old.log")}


def test_cli_a_directory_of_logs_with_different_settings(capsys):
    """Each file keeps its own interval and overlap setting (from its server_args line)."""
    rc, out, err = _run([str(LOGS), "--format", "json"], capsys)
    rows = json.loads(out)
    want = {}
    for truth_path in LOGS.glob("*.truth.json"):
        truth = json.loads(truth_path.read_text())
        if "params" in truth:
            log = next(p for p in LOGS.iterdir() if p.name.startswith(truth_path.name.split(".truth")[0] + ".log"))
            want.update({(str(log), r[0]): r[5] for r in truth["batch_lines"] if r[5] is not None})
        else:
            want.update({(str(LOGS / "edge_cases.log"), k): iterations.MISSING_ID for k in truth["missing_id_lines"]})
    got = {(r["file"], r["line"]): r["reason"] for r in rows}
    assert got == want
    assert rc == 0 and "— pre-fix overlap labelling" in err


def test_cli_trace_without_the_steps_analyzer(capsys, monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "analyzers.steps" else real(name, *a))
    rc, out, err = _run([str(LOGS / "sync_old.log"), "--trace", str(LOGS)], capsys)
    assert rc == 1 and "--trace needs the steps analyzer" in err


def test_cli_trace_that_does_not_overlap(capsys):
    traces = sorted((ROOT / "fixtures" / "kineto" / "gpu").glob("*.trace.json.gz"))
    if not traces:
        pytest.skip("no Kineto fixtures")
    steps_mod = importlib.util.find_spec("analyzers.steps")
    if steps_mod is None:
        pytest.skip("analyzers.steps is not in this checkout")
    rc, out, err = _run([str(LOGS / "overlap_old_ms.log"), "--trace", str(traces[0])], capsys)
    assert rc == 0 and "no log line falls on the trace" in err


# ---- fixtures ----------------------------------------------------------------------------------


def test_committed_fixtures_match_the_generator(tmp_path):
    assert gen.main(["-o", str(tmp_path)]) == 0
    have = sorted(p.name for p in LOGS.iterdir())
    assert have == sorted(p.name for p in tmp_path.iterdir()), "run: python fixtures/make_sglang_logs.py"
    for name in have:
        assert (tmp_path / name).read_bytes() == (LOGS / name).read_bytes(), f"{name}: run python fixtures/make_sglang_logs.py"
    assert sum(p.stat().st_size for p in LOGS.iterdir()) < 300 << 10
