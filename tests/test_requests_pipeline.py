"""`requests` and `pipeline` analyses on real-SDK dumps, checked against ground truth recorded by
the fixture generators (fixtures/README.md), never against numbers parsed from the same files."""

from __future__ import annotations

import io
import json
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analyzers import pipeline, requests
from tests.perfetto_check import decode
from traceconv.cli import main
from traceconv.readers import read_otel

FIX = Path(__file__).resolve().parent.parent / "fixtures" / "otel"
SGLANG = FIX / "sglang_pp2dp2tp2.jsonl"
STALLED = FIX / "pp_stalled.jsonl"
TRUTH = json.loads((FIX / "sglang_pp2dp2tp2.truth.json").read_text())
PP_TRUTH = json.loads((FIX / "pp_stalled.truth.json").read_text())
GENERIC_TRUTH = json.loads((FIX / "generic_service.truth.json").read_text())


@pytest.fixture(scope="module")
def sglang():
    return requests.analyze(read_otel([SGLANG]))


@pytest.fixture(scope="module")
def stalled_trace():
    return read_otel([STALLED])


@pytest.fixture(scope="module")
def stalled(stalled_trace):
    return pipeline.analyze(stalled_trace)


def truth_structure(truth):
    roots = {r["root_span_id"] for r in truth["requests"]}
    thread_ids = {s["span_id"] for s in truth["spans"] if s["thread_key"] and s["span_id"] not in roots
                  and any(s["name"].startswith(t["thread_label"]) for t in truth["threads"])}
    rid_of_trace = {r["trace_id"]: r["rid"] for r in truth["requests"]}
    return roots, thread_ids, rid_of_trace


def no_object_numbers(df: pd.DataFrame) -> None:
    for c in df.columns:
        assert df[c].dtype != object, f"{c} is an object column"


# ---- requests ---------------------------------------------------------------------------------


def test_stage_sums_equal_span_durations_exactly(sglang):
    roots, thread_ids, rid_of_trace = truth_structure(TRUTH)
    want = defaultdict(int)
    for s in TRUTH["spans"]:
        if s["span_id"] not in roots and s["span_id"] not in thread_ids:
            want[(rid_of_trace[s["trace_id"]], s["name"])] += s["end_ns"] - s["start_ns"]
    got = {}
    df = sglang.requests
    for col in [c for c in df.columns if c.startswith("stage:")]:
        for rid, v in zip(df["rid"], df[col]):
            if not pd.isna(v):
                got[(rid, col[len("stage:"):])] = int(v)
    assert got == dict(want)
    # the long form agrees, span for span
    spans = sglang.spans
    assert Counter(spans["stage"].astype(str)) == Counter(TRUTH["count_by_slice_name"])
    assert int(spans["dur_ns"].sum()) == sum(want.values())


def test_no_request_lost_aborted_and_orphan_marked(sglang):
    df = sglang.requests
    assert sorted(df["rid"]) == sorted(r["rid"] for r in TRUTH["requests"])
    by_rid = df.set_index("rid")
    roots, thread_ids, _ = truth_structure(TRUTH)
    for r in TRUTH["requests"]:
        row = by_rid.loc[r["rid"]]
        in_trace = [s for s in TRUTH["spans"] if s["trace_id"] == r["trace_id"]]
        stages = [s for s in in_trace if s["span_id"] not in roots and s["span_id"] not in thread_ids]
        assert row["n_spans"] == len(stages)
        assert row["dp_rank"] == r["dp_rank"]
        root = next(s for s in in_trace if s["span_id"] == r["root_span_id"])
        assert row["e2e_ns"] == root["end_ns"] - root["start_ns"]
        assert row["start_ns"] == root["start_ns"]
        assert row["status"] == ("aborted" if r["aborted"] else "partial" if row["orphan_spans"] else "ok")
    orphan = next(s for s in TRUTH["spans"] if s["span_id"] in TRUTH["orphan_span_ids"])
    owner = by_rid.loc[next(r["rid"] for r in TRUTH["requests"] if r["trace_id"] == orphan["trace_id"])]
    assert owner["partial"] and owner["orphan_spans"] == 1 and "parents of 1 span" in owner["missing"]
    aborted = by_rid.loc[next(r["rid"] for r in TRUTH["requests"] if r["aborted"])]
    assert aborted["finish_reason"] == "abort"
    assert set(df["role"]) == {"unified"}
    assert (df["ttft_ns"] > 0).all() and (df["ttft_ns"] < df["e2e_ns"]).all()
    no_object_numbers(df)
    no_object_numbers(sglang.spans)


def test_a_lost_root_still_gives_a_request(tmp_path):
    """Mutation: drop one request's root span from the dump (BatchSpanProcessor loss)."""
    victim = TRUTH["requests"][2]
    lines = []
    for line in SGLANG.read_text().splitlines():
        doc = json.loads(line)
        for rs in doc["resourceSpans"]:
            for ss in rs["scopeSpans"]:
                ss["spans"] = [sp for sp in ss["spans"] if sp["spanId"] != victim["root_span_id"]]
        lines.append(json.dumps(doc))
    path = tmp_path / "lost_root.jsonl"
    path.write_text("\n".join(lines) + "\n")
    rs = requests.analyze(read_otel([path]))
    df = rs.requests
    assert len(df) == len(TRUTH["requests"])
    lost = df[df["rid"] == victim["trace_id"]].iloc[0]  # no root, no rid: named by its trace id
    assert lost["status"] == "partial" and lost["missing"].startswith("root") and lost["role"] == "unknown"
    assert lost["root"] == "" and pd.isna(lost["ttft_ns"]) and lost["dp_rank"] == victim["dp_rank"]
    roots, thread_ids, _ = truth_structure(TRUTH)
    stages = [s for s in TRUTH["spans"] if s["trace_id"] == victim["trace_id"] and s["span_id"] not in roots | thread_ids]
    assert lost["n_spans"] == len(stages)
    assert sum(int(lost[c]) for c in df.columns if c.startswith("stage:") and not pd.isna(lost[c])) == sum(
        s["end_ns"] - s["start_ns"] for s in stages)
    assert "1 trace(s) with spans but no request root" in " ".join(rs.notes)


def test_truncated_dump_without_roots_or_thread_spans(tmp_path):
    """Mutation: cut the dump mid-line. Roots and thread spans end last, so none survive; the
    slices are still SGLang's (scope "sglang server"), grouped per trace, all marked partial."""
    path = tmp_path / "cut.jsonl"
    path.write_bytes(STALLED.read_bytes()[:60_000])
    trace = read_otel([path])
    rs = requests.analyze(trace)
    assert rs.mode == "sglang"
    assert (rs.requests["status"] == "partial").all() and rs.requests["missing"].str.startswith("root").all()
    assert (rs.requests["role"] == "unknown").all()
    spans = trace.column("slices", "dur_ns")
    assert int(rs.spans["dur_ns"].sum()) == int(spans[spans >= 0].sum())  # every span is some request's stage
    v = pipeline.analyze(trace)
    assert v.pp_size == 0 and len(v.ranks) == 4 and all(" / Spans" in r for r in v.ranks["rank"])


def test_queue_and_compute_add_top_level_stages_only(sglang):
    spans = sglang.spans
    top = spans[~spans["nested"]]
    for kind in ("queue", "compute", "frontend"):
        want = top[top["kind"] == kind].groupby("request")["dur_ns"].sum()
        got = sglang.requests[f"{kind}_ns"]
        assert got.loc[want.index].tolist() == want.tolist()
    assert set(spans.loc[spans["nested"], "stage"].astype(str)) == {"decode_loop", "chunked_prefill", "run_batch_cpu"}


def test_stage_summary_percentiles_and_grouping(sglang):
    summary = sglang.summary()
    no_object_numbers(summary)
    rows = summary.set_index("stage")
    durations = defaultdict(list)
    roots, thread_ids, _ = truth_structure(TRUTH)
    for s in TRUTH["spans"]:
        if s["span_id"] not in roots and s["span_id"] not in thread_ids:
            durations[s["name"]].append(s["end_ns"] - s["start_ns"])
    for name, d in durations.items():
        assert rows.loc[name, "n_spans"] == len(d)
        assert rows.loc[name, "total_ns"] == sum(d)
        assert rows.loc[name, "max_ns"] == max(d)
        assert rows.loc[name, "p50_ns"] == pytest.approx(np.percentile(d, 50))
        assert rows.loc[name, "p99_ns"] == pytest.approx(np.percentile(d, 99))
    assert rows.loc["(e2e)", "n_requests"] == len(TRUTH["requests"])
    by_dp = sglang.summary(by=["dp", "role"])
    assert set(by_dp["dp_rank"].dropna()) == {0, 1}
    assert by_dp.groupby("stage")["n_spans"].sum().drop(["(e2e)", "(ttft)"]).to_dict() == TRUTH["count_by_slice_name"]
    per_pp = sglang.summary(by="pp")
    assert "(e2e)" not in set(per_pp["stage"])  # a request spans ranks
    with pytest.raises(ValueError, match="cannot group by"):
        sglang.summary(by=["bogus"])


def test_generic_service_stage_is_span_name():
    rs = requests.analyze(read_otel([FIX / "generic_service.jsonl"]))
    assert rs.mode == "generic"
    assert len(rs.requests) == GENERIC_TRUTH["n_traces"]
    assert sorted(rs.requests["trace_id"]) == sorted({s["trace_id"] for s in GENERIC_TRUTH["spans"]})
    want = defaultdict(int)
    for s in GENERIC_TRUTH["spans"]:
        want[s["name"]] += s["end_ns"] - s["start_ns"]
    got = rs.spans.groupby("stage", observed=True)["dur_ns"].sum().to_dict()
    assert got == dict(want)
    checkout = rs.requests.set_index("root").loc["POST /checkout"]
    assert checkout["status"] == "error" and checkout["role"] == "checkout" and checkout["e2e_ns"] == 8_000_000
    assert set(rs.requests["role"]) == {"checkout", "payments"}


def test_pp_fixture_stage_sums_match_generator(stalled_trace):
    rs = requests.analyze(stalled_trace)
    got = {}
    for _, row in rs.requests.iterrows():
        got[row["rid"]] = {c[len("stage:"):]: int(row[c]) for c in rs.requests.columns if c.startswith("stage:") and not pd.isna(row[c])}
    assert got == PP_TRUTH["stage_sums_ns"]
    assert (rs.requests["status"] == "ok").all()


# ---- pipeline ---------------------------------------------------------------------------------


def test_stalled_rank_has_the_largest_bubble_share(stalled):
    ranks = stalled.ranks
    top = ranks.loc[ranks["bubble_share"].idxmax(), "rank"]
    assert top == PP_TRUTH["pipeline"]["stalled_rank"]
    assert stalled.stalled == [PP_TRUTH["pipeline"]["stalled_rank"]]
    # raw idle time does not single it out (every rank waits for it): that is why the share exists
    assert ranks.loc[ranks["gap_ns"].idxmax(), "rank"] != top


def test_pipeline_numbers_equal_the_generator_schedule(stalled):
    truth = PP_TRUTH["pipeline"]
    assert stalled.note is None and stalled.pp_size == PP_TRUTH["pp_size"]
    assert stalled.duplicates == PP_TRUTH["run_batch_cpu_duplicates"]
    assert stalled.handoff_ns == {0: truth["handoff_ns"]}
    got = stalled.ranks.set_index("rank")
    assert list(got.index) == [r["rank"] for r in truth["ranks"]]  # PP order
    for want in truth["ranks"]:
        row = got.loc[want["rank"]]
        for key in ("n_batches", "busy_ns", "window_ns", "fill_ns", "gap_ns", "drain_ns", "bubble_ns", "max_gap_ns",
                    "wait_ns", "idle_ready_ns", "stall_ns", "out_of_order"):
            assert row[key] == want[key], (want["rank"], key)
        assert row["bubble_share"] == pytest.approx(want["bubble_share"], abs=1e-12)
        assert row["mb_order"] == " ".join(map(str, want["mb_order"]))
        assert row["busy_frac"] == pytest.approx(want["busy_ns"] / want["window_ns"])
    iv = stalled.intervals
    for rank, rows in truth["intervals"].items():
        mine = iv[iv["rank"] == rank]
        assert mine["start_ns"].tolist() == [r["start_ns"] for r in rows]
        assert mine["end_ns"].tolist() == [r["end_ns"] for r in rows]
        assert mine["gap_ns"].tolist() == [r["gap_ns"] for r in rows]
        assert [None if pd.isna(x) else int(x) for x in mine["ready_ns"]] == [r["ready_ns"] for r in rows]
    assert got.loc[truth["out_of_order_rank"], "out_of_order"] == 1
    assert got["out_of_order"].sum() == 1
    no_object_numbers(stalled.ranks)
    no_object_numbers(stalled.intervals)


def test_in_flight_counter(stalled):
    samples = pipeline.in_flight(stalled)
    no_object_numbers(samples)
    assert samples.groupby("rank")["value"].max().to_dict() == {r["rank"]: r["max_in_flight"] for r in PP_TRUTH["pipeline"]["ranks"]}
    assert (samples["value"] >= 0).all()
    for _, g in samples.groupby("rank"):
        assert g["ts_ns"].is_monotonic_increasing and g["value"].iloc[-1] == 0


def test_run_batch_cpu_is_deduplicated_per_rank_mb_and_start():
    v = pipeline.analyze(read_otel([SGLANG]))  # the BURST pair: 2 spans per rank, one micro-batch
    assert v.duplicates == 2
    assert v.intervals["n_requests"].tolist() == [2, 2]
    assert v.ranks["rank"].tolist() == ["PP0-DP0-TP0", "PP1-DP0-TP0"]


@pytest.mark.parametrize(
    "name, says",
    [
        ("pp_level3.jsonl", "set SGLANG_TRACE_LEVEL=4"),
        ("generic_service.jsonl", "no pipeline parallelism"),
        ("sglang_console.txt", "no pipeline parallelism"),  # SGLang spans, PP0 only
    ],
)
def test_dumps_without_a_pipeline_view_say_why(name, says):
    v = pipeline.analyze(read_otel([FIX / name]))
    assert v.empty and v.ranks.empty
    assert says.lower() in v.note.lower()
    assert pipeline.in_flight(v).empty


# ---- CLI --------------------------------------------------------------------------------------


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_requests_table_csv_json_parquet(capsys, tmp_path):
    code, out, err = run(capsys, "requests", str(SGLANG))
    assert code == 0
    assert "p99_ns" in out and "decode_loop" in out and "(e2e)" in out
    assert "8 requests (1 partial, 1 aborted)" in err

    code, out, _ = run(capsys, "requests", str(SGLANG), "--per-request", "--format", "csv")
    assert code == 0
    df = pd.read_csv(io.StringIO(out))
    assert len(df) == 8 and df["e2e_ns"].dtype == np.int64
    assert sorted(df["status"]) == sorted(["ok"] * 6 + ["partial", "aborted"])

    code, out, _ = run(capsys, "requests", str(SGLANG), "--format", "json", "--by", "dp")
    rows = json.loads(out)
    assert {r["stage"] for r in rows} >= {"prefill_forward", "(ttft)"} and {r["dp_rank"] for r in rows} == {0, 1}

    path = tmp_path / "stages.parquet"
    code, _, err = run(capsys, "requests", str(SGLANG), "-o", str(path))
    assert code == 0 and f"Wrote {path}" in err
    pq = pd.read_parquet(path)
    assert pq["total_ns"].dtype == np.int64 and "p50_ns" in pq

    code, _, err = run(capsys, "requests", str(SGLANG), "--by", "bogus")
    assert code == 2 and "cannot group by" in err
    code, _, err = run(capsys, "requests", str(SGLANG), "--format", "parquet")
    assert code == 1 and "needs -o" in err


def test_cli_pipeline_table_and_formats(capsys, tmp_path):
    code, out, err = run(capsys, "pipeline", str(STALLED))
    assert code == 0
    assert "bubble_share" in out and "PP2-DP0-TP0" in out
    assert "stalled: PP2-DP0-TP0" in err and "out of order: PP3-DP0-TP0" in err
    code, out, _ = run(capsys, "pipeline", str(STALLED), "--format", "csv")
    df = pd.read_csv(io.StringIO(out))
    assert df.loc[df["bubble_share"].idxmax(), "rank"] == "PP2-DP0-TP0"
    code, out, _ = run(capsys, "pipeline", str(STALLED), "--intervals", "--format", "json")
    assert len(json.loads(out)) == PP_TRUTH["pp_size"] * PP_TRUTH["n_micro_batches"] * PP_TRUTH["rounds"]
    path = tmp_path / "ranks.parquet"
    assert run(capsys, "pipeline", str(STALLED), "-o", str(path))[0] == 0
    assert pd.read_parquet(path)["stall_ns"].dtype == np.int64


def test_cli_pipeline_without_pp_says_so(capsys):
    code, out, err = run(capsys, "pipeline", str(FIX / "pp_level3.jsonl"))
    assert code == 0 and out == "" and "SGLANG_TRACE_LEVEL=4" in err
    code, out, err = run(capsys, "pipeline", str(FIX / "generic_service.jsonl"), "--format", "csv")
    assert code == 0 and "no pipeline parallelism" in err
    assert pd.read_csv(io.StringIO(out)).empty  # a valid, empty table for machine readers


def test_cli_pipeline_perfetto_overlay(capsys, tmp_path):
    path = tmp_path / "pp.pftrace"
    code, _, err = run(capsys, "pipeline", str(STALLED), "--perfetto", str(path))
    assert code == 0 and f"Wrote {path}" in err
    d = decode(path.read_bytes())
    per_track = defaultdict(list)
    for uuid, value, ts in d.counters:
        per_track[d.track_name(uuid)].append(value)
    want = {f"{r['rank']} in-flight micro-batches": r["max_in_flight"] for r in PP_TRUTH["pipeline"]["ranks"]}
    assert {k: max(v) for k, v in per_track.items()} == want
    assert len([s for s in d.slices if not s.instant]) == PP_TRUTH["n_spans"]  # the trace itself is all there


def test_overlay_counter_tracks_are_counter_tracks(capsys, tmp_path):
    path = tmp_path / "pp.pftrace"
    assert run(capsys, "pipeline", str(STALLED), "--perfetto", str(path))[0] == 0
    d = decode(path.read_bytes())
    assert all(d.tracks[uuid].HasField("counter") for uuid, _, _ in d.counters)


def test_pp_fixtures_are_what_the_generator_writes(tmp_path):
    """The committed PP fixtures are the generator's output, byte for byte (no hand edits)."""
    import subprocess
    import sys

    script = FIX.parent / "make_pp_fixtures.py"
    subprocess.run([sys.executable, str(script), "-o", str(tmp_path)], check=True, capture_output=True)
    for name in ("pp_stalled.jsonl", "pp_stalled.truth.json", "pp_level3.jsonl"):
        assert (tmp_path / name).read_bytes() == (FIX / name).read_bytes(), name
