"""nsys2perfetto and layers: Nsight Systems SQLite exports against the fixture generator's own
bookkeeping (fixtures/nsys/*.truth.json) and against direct SQL joins on the exports; the same
checks on the real exports in ../shared/corpus/nsys when that folder is present."""

from __future__ import annotations

import io
import json
import shutil
import sqlite3
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import traceconv
from analyzers import layers, steps
from tests.perfetto_check import decode
from traceconv.cli import main
from traceconv.readers import read_nsys, read_trace, sniff
from traceconv.readers.nsys import CROSS_THREAD_TRACK, decode_global_tid
from traceconv.writers import write_trace

ROOT = Path(__file__).resolve().parent.parent
FIX = ROOT / "fixtures" / "nsys"
FIXTURES = sorted(FIX.glob("*.sqlite"))
TP2 = FIX / "sglang_layerwise_tp2.sqlite"
OLD = FIX / "old_schema_2020.sqlite"
GRAPH_MODE = FIX / "graph_trace_mode.sqlite"
CORPUS = ROOT.parent / "shared" / "corpus" / "nsys"
CORPUS_FILES = sorted(p.name for p in CORPUS.glob("*.sqlite")) if CORPUS.is_dir() else []
RANGE_TYPES = (59, 60, 70, 71)  # NVTX(T) push/pop and start/end ranges
MARK_TYPES = (34, 65)


def truth_of(path: Path) -> dict:
    return json.loads(path.with_suffix(".truth.json").read_text())


def ids(p) -> str:
    return Path(p).name


# ---- direct SQL on the export (what the tests compare with) -----------------------------------


def connect(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(path.resolve().as_uri() + "?mode=ro&immutable=1", uri=True)


def tables(con) -> set[str]:
    return {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}


def sql_ranges(path: Path) -> list[tuple]:
    """(pid, tid, start, end, text, same_thread) of every NVTX range; unclosed ones end at the
    last NVTX timestamp (nsys' rule)."""
    con = connect(path)
    types = ",".join(map(str, RANGE_TYPES))
    (last,) = con.execute(f"SELECT max(max(start), max(end)) FROM NVTX_EVENTS WHERE eventType IN ({types})").fetchone()
    rows = con.execute(
        f"""SELECT n.globalTid, n.start, coalesce(n.end, ?), coalesce(s.value, n.text, ''),
                   n.endGlobalTid IS NULL OR n.endGlobalTid = n.globalTid
            FROM NVTX_EVENTS n LEFT JOIN StringIds s ON s.id = n.textId
            WHERE n.eventType IN ({types}) AND n.globalTid IS NOT NULL""",
        (last,),
    ).fetchall()
    con.close()
    return [(*decode_global_tid(g), s, max(e, s), t, bool(same)) for g, s, e, t, same in rows]


def sql_kernels(path: Path) -> list[tuple]:
    """(demangled name, start, end) of every kernel."""
    con = connect(path)
    rows = con.execute(
        "SELECT s.value, k.start, k.end FROM CUPTI_ACTIVITY_KIND_KERNEL k JOIN StringIds s ON s.id = k.demangledName"
    ).fetchall()
    con.close()
    return rows


def sql_kernel_time_per_range(path: Path) -> dict[tuple, list[int]]:
    """{(pid, tid, start, end, text): [n_kernels, kernel_ns, self_n_kernels, self_kernel_ns]} by
    one join: kernel ⋈ launch call (same correlation id and process) ⋈ every NVTX range on the
    launching thread that contains the whole call; the innermost (latest start, earliest end,
    later row) of each kernel's ranges gives the self columns."""
    con = connect(path)
    types = ",".join(map(str, RANGE_TYPES))
    con.executescript(
        """
        CREATE TEMP TABLE kr AS
            SELECT k.rowid AS kid, k.end - k.start AS kdur, r.globalTid AS tid, r.start AS rs, r.end AS re
            FROM CUPTI_ACTIVITY_KIND_KERNEL AS k
            JOIN CUPTI_ACTIVITY_KIND_RUNTIME AS r
              ON r.correlationId = k.correlationId AND (r.globalTid & 0xFFFFFFFFFF000000) = k.globalPid;
        CREATE INDEX temp.kr_tid ON kr (tid, rs);
        """
    )
    (last,) = con.execute(f"SELECT max(max(start), max(end)) FROM NVTX_EVENTS WHERE eventType IN ({types})").fetchone()
    rows = con.execute(
        f"""SELECT n.rowid, n.globalTid, n.start, coalesce(n.end, :last) AS e, coalesce(s.value, n.text, ''), kr.kid, kr.kdur
            FROM NVTX_EVENTS AS n
            LEFT JOIN StringIds AS s ON s.id = n.textId
            JOIN kr ON kr.tid = n.globalTid AND kr.rs >= n.start AND kr.re <= coalesce(n.end, :last)
                   AND kr.rs <= coalesce(n.end, :last)  -- implied; lets SQLite bound the index scan
            WHERE n.eventType IN ({types}) AND (n.endGlobalTid IS NULL OR n.endGlobalTid = n.globalTid)""",
        {"last": last},
    ).fetchall()
    con.close()
    out: dict[tuple, list[int]] = {}
    inner: dict[int, tuple] = {}
    for rowid, g, start, end, text, kid, kdur in rows:
        key = (*decode_global_tid(g), start, end, text)
        e = out.setdefault(key, [0, 0, 0, 0])
        e[0] += 1
        e[1] += kdur
        rank = (start, -end, rowid)
        if kid not in inner or rank > inner[kid][0]:
            inner[kid] = (rank, key, kdur)
    for _, key, kdur in inner.values():
        out[key][2] += 1
        out[key][3] += kdur
    return out


def our_kernel_time_per_range(trace) -> dict[tuple, list[int]]:
    offset = trace.metadata["nsys"]["clock_offset_ns"]
    r = layers.by_range(trace)
    track = trace.column("slices", "track_id")[r["row"].to_numpy()]
    tid = trace.column("tracks", "tid")[track]
    pid = trace.column("processes", "pid")[trace.column("tracks", "process_id")[track]]
    out: dict[tuple, list[int]] = {}
    for p, t, row in zip(pid.tolist(), tid.tolist(), r.itertuples()):
        if row.n_kernels:
            e = out.setdefault((p, t, row.start_ns - offset, row.end_ns - offset, row.text), [0, 0, 0, 0])
            for i, v in enumerate((row.n_kernels, row.kernel_ns, row.self_n_kernels, row.self_kernel_ns)):
                e[i] += int(v)
    return out


def perfetto(trace) -> "tests.perfetto_check.Decoded":  # noqa: F821
    buf = io.BytesIO()
    write_trace(trace, buf, "perfetto")
    return decode(buf.getvalue())


# ---- fixtures: the generator ----------------------------------------------------------------


def test_fixtures_regenerate_identically_and_stay_small(tmp_path):
    subprocess.run([sys.executable, str(ROOT / "fixtures" / "make_nsys_fixtures.py"), str(tmp_path)], check=True, capture_output=True)
    for path in FIXTURES:
        new = tmp_path / path.name
        assert list(connect(path).iterdump()) == list(connect(new).iterdump()), path.name
        assert new.with_suffix(".truth.json").read_text() == path.with_suffix(".truth.json").read_text()
    assert sum(p.stat().st_size for p in FIX.iterdir()) < 300 * 1024


def test_fixtures_follow_the_documented_schema():
    for path in FIXTURES:
        con = connect(path)
        t = tables(con)
        assert {"StringIds", "ThreadNames", "NVTX_EVENTS", "CUPTI_ACTIVITY_KIND_RUNTIME", "CUPTI_ACTIVITY_KIND_KERNEL"} <= t
        cols = {r[1] for r in con.execute("PRAGMA table_info(CUPTI_ACTIVITY_KIND_KERNEL)")}
        assert {"start", "end", "deviceId", "streamId", "correlationId", "globalPid", "demangledName", "shortName", "gridX"} <= cols
    assert "PROCESSES" not in tables(connect(OLD)) and "TARGET_INFO_SESSION_START_TIME" not in tables(connect(OLD))
    assert "CUPTI_ACTIVITY_KIND_GRAPH_TRACE" in tables(connect(GRAPH_MODE))


# ---- reader ---------------------------------------------------------------------------------


@pytest.mark.parametrize("path", FIXTURES, ids=ids)
def test_reader_counts_clock_and_shape(path):
    truth = truth_of(path)
    t = read_nsys(path)
    c = t.metadata["nsys"]["counts"]
    want = truth["counts"]
    assert c["nvtx_ranges"] == want["nvtx_ranges"] and c["nvtx_marks"] == want["nvtx_marks"]
    assert c.get("kernels", 0) == want["kernels"] and c.get("memcpy", 0) == want["memcpy"] and c.get("memset", 0) == want["memset"]
    assert c.get("cuda_graph_executions", 0) == want["graph_executions"] and c["cuda_api_calls"] == want["cuda_api_calls"]
    assert t.metadata["nsys"]["clock_offset_ns"] == truth["clock_offset_ns"]
    assert t.processes.num_rows == want["processes"]
    cats = Counter(t.strings("slices", "category")[c] for c in t.column("slices", "category"))
    assert cats["kernel"] == want["kernels"] and cats["gpu_memcpy"] == want["memcpy"] and cats["gpu_memset"] == want["memset"]
    assert cats["nvtx"] == want["nvtx_ranges"] + want["nvtx_marks"]
    assert t.stats.get("nsys_nvtx_cross_thread_range", 0) == want["cross_thread_ranges"]
    assert t.stats.get("nsys_nvtx_unclosed_range", 0) == want["unclosed_ranges"]
    # one flow per GPU op whose launch call is in the export (a graph launch fans out)
    launched = sum(1 for k in truth["kernels"] if k["attribution"] != "no_launch") + want["memcpy"] + want["memset"]
    assert t.flows.num_rows == launched
    kinds = set(t.tracks.column("kind").to_pylist())
    assert {"thread", "gpu_stream"} <= kinds


def test_processes_named_with_ranks_and_epoch_clock():
    t = read_nsys(TP2)
    assert t.processes.column("name").to_pylist() == ["TP0 [4101] python3", "TP1 [4102] python3"]
    names = t.tracks.column("name").to_pylist()
    assert names.count("GPU 0 stream 7") == 1 and "GPU 1 stream 13" in names and CROSS_THREAD_TRACK in names
    assert t.metadata["nsys"]["gpus"] == {"0": "NVIDIA H100 80GB HBM3", "1": "NVIDIA H100 80GB HBM3"}
    assert t.column("slices", "ts_ns").min() > 1_767_225_600_000_000_000  # epoch ns
    assert not t.warnings[1:] and "2 GPU ops have no CUDA API call" in t.warnings[0]


def test_old_schema_is_read_and_its_gaps_are_said():
    t = read_nsys(OLD)
    meta = t.metadata["nsys"]
    assert {"PROCESSES", "TARGET_INFO_SESSION_START_TIME"} <= set(meta["absent_tables"])
    assert "CUPTI_ACTIVITY_KIND_KERNEL.graphId" in meta["missing_columns"]
    assert any("relative clock" in w for w in t.warnings)
    assert meta["clock_offset_ns"] == 0 and t.column("slices", "ts_ns").min() < 10**10
    assert t.processes.column("name").to_pylist() == ["[23817] python"]  # no PROCESSES: the main thread's name
    # the domain of the step ranges comes from the NvtxDomainCreate row
    keys = t.strings("args", "key")
    dom = t.args.to_pandas()
    dom = dom[dom["key"] == "domain"]
    assert set(dom["string_value"].astype(str)) == {"sglang"} and keys


def test_read_trace_dispatches_sqlite_and_streams():
    assert sniff(str(TP2)) == "nsys"
    t = traceconv.read_trace(str(TP2))
    assert t.metadata["format"] == "nsys"
    with open(TP2, "rb") as f:
        s = read_nsys(f)
    assert s.num_slices == t.num_slices and s.flows.num_rows == t.flows.num_rows
    both = read_trace([str(TP2), str(OLD)])
    assert both.processes.num_rows == 3


# ---- Perfetto output -------------------------------------------------------------------------


@pytest.mark.parametrize("path", FIXTURES, ids=ids)
def test_every_range_mark_and_gpu_op_in_the_perfetto_output(path):
    truth = truth_of(path)
    off = truth["clock_offset_ns"]
    d = perfetto(read_nsys(path))
    spans = Counter((s.name, s.start, s.end) for s in d.slices if s.category == "nvtx" and not s.instant)
    assert spans == Counter((r["text"], r["start"] + off, r["end"] + off) for r in truth["ranges"])
    marks = Counter((s.name, s.start) for s in d.slices if s.category == "nvtx" and s.instant)
    assert marks == Counter((m["text"], m["start"] + off) for m in truth["marks"])
    for kind, cat in (("kernel", "kernel"), ("graph", "cuda_graph")):
        got = Counter((s.name, s.start, s.end) for s in d.slices if s.category == cat)
        assert got == Counter((k["name"], k["start"] + off, k["start"] + k["dur"] + off) for k in truth["kernels"] if k["kind"] == kind)
    # cross-thread start/end ranges are on their own track; the others on their thread
    cross = {r["text"] for r in truth["ranges"] if r["cross_thread"]}
    for s in d.slices:
        if s.category == "nvtx" and not s.instant:
            assert (d.thread_of(s) == CROSS_THREAD_TRACK) == (s.name in cross)
    flows = d.flows()
    assert len(flows) == read_nsys(path).flows.num_rows
    assert all(a.category in ("cuda_runtime", "cuda_driver") and b.category in ("kernel", "gpu_memcpy", "gpu_memset", "cuda_graph") for a, b in flows)


def test_graph_launch_fans_out_one_flow_per_kernel():
    truth = truth_of(TP2)
    d = perfetto(read_nsys(TP2))
    per_launch = Counter(id(a) for a, b in d.flows() if a.name == "cudaGraphLaunch")
    assert sorted(per_launch.values()) == [8, 8, 8, 8]  # 2 decode steps x 2 ranks, 8 graph nodes each
    assert sum(per_launch.values()) == sum(k["graph"] for k in truth["kernels"])
    assert {"TP0 [4101] python3", "TP1 [4102] python3"} <= set(d.process_names)


# ---- layers ----------------------------------------------------------------------------------


@pytest.mark.parametrize("path", FIXTURES, ids=ids)
def test_module_type_and_layer_time_match_the_truth(path):
    truth = truth_of(path)
    t = read_nsys(path)
    m = layers.by_module(t)
    mod = m[m["kind"] == "module"]
    assert {r.module: [r.n_kernels, r.kernel_ns] for r in mod.itertuples()} == {k: [v["n_kernels"], v["kernel_ns"]] for k, v in truth["by_module"].items()}
    ty = layers.by_module_type(t)
    ty = ty[ty["kind"] == "module"]
    assert {r.module_type: [r.n_kernels, r.kernel_ns] for r in ty.itertuples()} == {k: [v["n_kernels"], v["kernel_ns"]] for k, v in truth["by_module_type"].items()}
    ly = layers.by_layer(t)
    ly = ly[ly["kind"] == "module"]
    got = {f"{'None' if r.layer_stack == layers.OUTSIDE_LAYERS else r.layer_stack}|{'None' if pd.isna(r.layer) else r.layer}": [r.n_kernels, r.kernel_ns] for r in ly.itertuples()}
    assert got == {k: [v["n_kernels"], v["kernel_ns"]] for k, v in truth["by_layer"].items()}
    # every kernel in exactly one bucket
    buckets = {r.kind: r.kernel_ns for r in m.itertuples() if r.kind != "module"}
    buckets["module"] = int(mod["kernel_ns"].sum())
    assert {b: buckets.get(b, 0) for b in truth["buckets_ns"]} == truth["buckets_ns"]
    assert m["kernel_ns"].sum() == sum(k["dur"] for k in truth["kernels"])
    assert abs(m["share"].sum() - 1) < 1e-9


@pytest.mark.parametrize("path", FIXTURES, ids=ids)
def test_each_kernel_range_module_and_bucket(path):
    truth = truth_of(path)
    t = read_nsys(path)
    off = truth["clock_offset_ns"]
    k = layers.layer_kernels(t)
    pid = {r["name"]: r["pid"] for r in t.processes.to_pylist()}
    got = {(pid[str(r.rank)], r.correlation, r.ts_ns - off): (str(r.attribution), None if pd.isna(r.module) else r.module, None if pd.isna(r.range) else r.range)
           for r in k.itertuples()}
    want = {(x["pid"], x["correlation"], x["start"]): (x["attribution"], x["module"], x["range"]) for x in truth["kernels"]}
    assert got == want
    assert k["layer"].dtype == "Int64" and k["dur_ns"].dtype == np.int64 and k["module"].dtype == "string"


def test_cuda_graph_time_is_reported_as_such_not_given_to_modules():
    truth = truth_of(TP2)
    t = read_nsys(TP2)
    k = layers.layer_kernels(t)
    g = k[k["graph"]]
    assert len(g) == 32 and (g["attribution"] == "cuda_graph").all() and g["module"].isna().all()
    assert set(g["launch_api"]) == {"cudaGraphLaunch"} and set(g["range"]) == {"cuda_graph_runner.replay"}
    m = layers.by_module(t)
    assert m.loc[m["module"] == "(cuda_graph)", "kernel_ns"].item() == truth["buckets_ns"]["cuda_graph"]
    # graph mode: whole-graph executions, also kept out of modules
    gm = layers.by_module_type(read_nsys(GRAPH_MODE))
    row = gm[gm["kind"] == "cuda_graph"]
    assert row["n_kernels"].item() == 2 and row["kernel_ns"].item() == truth_of(GRAPH_MODE)["buckets_ns"]["cuda_graph"]


def test_layerwise_text_parsing():
    text = "{'Module': 'meta-llama/Llama-3.2-1B.model.layers.1.self_attn.qkv_proj', 'TrainableParams': {'weight': [1536, 2048]}, 'Inputs': [[14, 2048]], 'StaticParams': {'in_features': 2048, 'out_features': 1536}}"
    p = layers.parse_layerwise(text)
    assert (p.layer_stack, p.layer, p.module_type, p.inputs, p.n_params) == ("meta-llama/Llama-3.2-1B.model.layers", 1, "self_attn.qkv_proj", "[[14,2048]]", 1536 * 2048)
    assert layers.parse_layerwise("{'Module': __import__('os').system('x')}") is None  # literal_eval, never eval
    cut = layers.parse_layerwise("{'Module': 'model.layers.2.mlp', 'Inputs': [[1, 2]")  # a truncated text keeps its module
    assert (cut.module, cut.layer, cut.inputs) == ("model.layers.2.mlp", 2, None)
    odd = layers.parse_layerwise("{'Module': 'model.layers.3.mlp.down_proj', 'Inputs': [[7, 8192]], 'dtype': torch.bfloat16}")
    assert (odd.module_type, odd.inputs) == ("mlp.down_proj", "[[7,8192]]")  # not a literal as a whole: key by key
    assert layers.parse_layerwise("{'Module': 1}") is None and layers.parse_layerwise("{'a': 'Module'}") is None
    assert layers.split_module_path("transformer.transformer_blocks.3.attn1.to_q") == ("transformer.transformer_blocks", 3, "attn1.to_q")
    assert layers.split_module_path("model.layers.0") == ("model.layers", 0, "(layer)")
    r = layers.nvtx_ranges(read_nsys(TP2))
    assert r["layerwise"].sum() == truth_of(TP2)["counts"]["layerwise_ranges"]
    assert r["layer"].dtype == "Int64" and r["n_params"].dtype == "Int64"


@pytest.mark.parametrize("path", FIXTURES, ids=ids)
def test_kernel_time_per_range_equals_truth_and_a_direct_sql_join(path):
    truth = truth_of(path)
    t = read_nsys(path)
    ours = our_kernel_time_per_range(t)
    assert ours == sql_kernel_time_per_range(path)
    want: dict[tuple, list[int]] = {}
    for r in truth["ranges"]:
        if r["n_kernels"] and not r["cross_thread"]:
            e = want.setdefault((r["pid"], r["tid"], r["start"], r["end"], r["text"]), [0, 0, 0, 0])
            for i, key in enumerate(("n_kernels", "kernel_ns", "self_n_kernels", "self_kernel_ns")):
                e[i] += r[key]
    assert ours == want


def test_containment_with_crossing_ranges_is_exact():
    from analyzers.intervals import containing_pairs, innermost_containing

    rng = np.random.default_rng(7)
    n, q = 300, 500
    track = rng.integers(0, 3, n)
    start = rng.integers(0, 10_000, n)
    end = start + rng.integers(0, 3_000, n)
    qt = rng.integers(0, 3, q)
    qs = rng.integers(0, 12_000, q)
    qe = qs + rng.integers(0, 200, q)
    inside = (track[None, :] == qt[:, None]) & (start[None, :] <= qs[:, None]) & (end[None, :] >= qe[:, None])
    qi, ri = containing_pairs(track, start, end, qt, qs, qe)
    assert sorted(zip(qi.tolist(), ri.tolist())) == sorted(zip(*np.nonzero(inside)))
    inner = innermost_containing(track, start, end, qt, qs, qe)
    for i in range(q):
        c = np.flatnonzero(inside[i])
        want = max(c.tolist(), key=lambda j: (start[j], -end[j], j)) if len(c) else -1
        assert inner[i] == want


# ---- steps on NVTX step[...] ranges ----------------------------------------------------------


@pytest.mark.parametrize("path", [TP2, OLD], ids=ids)
def test_traceconv_steps_on_an_nsys_export(path, capsys):
    truth = truth_of(path)
    off = truth["clock_offset_ns"]
    assert main(["steps", str(path), "--by-step", "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    got = sorted((r["cpu_start_ns"] - off, r["label"], r["n_gpu_ops"], r["kernel_ns"], r["gpu_op_ns"]) for r in rows)
    want = sorted((s["start"], s["label"], s["n_gpu_ops"], s["kernel_ns"], s["gpu_op_ns"]) for s in truth["steps"])
    assert got == want
    pm = steps.per_mode(read_nsys(path))
    assert set(pm["mode"].astype(str)) >= {"prefill", "decode"}


# ---- CLI -------------------------------------------------------------------------------------


def test_nsys2perfetto_cli_default_name_and_json(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["nsys2perfetto", str(TP2)]) == 0
    err = capsys.readouterr().err
    assert "Wrote sglang_layerwise_tp2.pftrace" in err and "Converted 1 input(s)" in err
    d = decode((tmp_path / "sglang_layerwise_tp2.pftrace").read_bytes())
    assert sum(s.category == "kernel" for s in d.slices) == truth_of(TP2)["counts"]["kernels"]
    assert main(["nsys2perfetto", str(OLD), "--format", "json"]) == 0
    doc = json.loads((tmp_path / "old_schema_2020.json").read_text())
    assert sum(e.get("cat") == "kernel" for e in doc["traceEvents"]) == truth_of(OLD)["counts"]["kernels"]
    assert main(["nsys2perfetto", str(TP2), "--only-gpu", "-o", "gpu.pftrace"]) == 0
    d = decode((tmp_path / "gpu.pftrace").read_bytes())
    assert {s.category for s in d.slices} == {"kernel", "gpu_memcpy", "gpu_memset"}
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(OLD.read_bytes())))
    assert main(["nsys2perfetto", "-"]) == 0  # stdin is copied to a temporary file
    assert sum(s.category == "kernel" for s in decode((tmp_path / "stdin.pftrace").read_bytes()).slices) == truth_of(OLD)["counts"]["kernels"]


def test_layers_cli_views_and_formats(tmp_path, capsys):
    assert main(["layers", str(TP2)]) == 0
    cap = capsys.readouterr()
    assert "(cuda_graph)" in cap.out and "meta-llama/Llama-3.2-1B.model.layers.0.mlp.down_proj" in cap.out
    assert "100 kernels" in cap.err and "cuda graph" in cap.err
    assert main(["layers", str(TP2), "--by-type", "--format", "csv"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("module_type,kind,") and any(ln.startswith("self_attn.qkv_proj,module,4,108000,2,4") for ln in lines)
    assert main(["layers", str(TP2), "--by-layer", "--by-rank", "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {r["rank"] for r in rows} == {"TP0 [4101] python3", "TP1 [4102] python3"}
    pq = tmp_path / "k.parquet"
    assert main(["-q", "layers", str(TP2), "--kernels", "-o", str(pq)]) == 0
    back = pd.read_parquet(pq)
    assert len(back) == 100 and back["dur_ns"].dtype == np.int64
    assert main(["layers", str(TP2), "--by-range", "--format", "csv"]) == 0
    assert capsys.readouterr().out.startswith("row,rank,thread,text,")
    assert main(["layers", str(OLD), "--by-layer"]) == 0
    assert "(outside layers)" in capsys.readouterr().out


def test_wrong_inputs_exit_1_in_one_line(tmp_path, capsys):
    bad = tmp_path / "x.sqlite"
    bad.write_text('{"traceEvents": []}')
    assert main(["nsys2perfetto", str(bad)]) == 1
    assert "nsys export" in capsys.readouterr().err
    other = tmp_path / "other.sqlite"
    con = sqlite3.connect(other)
    con.execute("CREATE TABLE t (x)")
    con.commit()
    con.close()
    assert main(["layers", str(other)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not an Nsight Systems export" in err[0]


# ---- tolerance of other nsys versions (mutations of the modern fixture) ----------------------


def mutated(tmp_path: Path, *sql: str) -> Path:
    p = tmp_path / "mutated.sqlite"
    shutil.copy(TP2, p)
    con = sqlite3.connect(p)
    for s in sql:
        con.execute(s)
    con.commit()
    con.close()
    return p


def test_kernels_without_global_pid_join_by_correlation_alone(tmp_path):
    p = mutated(tmp_path, "ALTER TABLE CUPTI_ACTIVITY_KIND_KERNEL DROP COLUMN globalPid")
    t = read_nsys(p)
    assert "CUPTI_ACTIVITY_KIND_KERNEL.globalPid" in t.metadata["nsys"]["missing_columns"]
    assert t.flows.num_rows == read_nsys(TP2).flows.num_rows
    m = layers.by_module(t)
    assert m.loc[m["kind"] == "module", "kernel_ns"].sum() == truth_of(TP2)["buckets_ns"]["module"]


def test_event_type_ids_are_taken_from_the_enum_table(tmp_path):
    p = mutated(tmp_path, "UPDATE NVTX_EVENTS SET eventType = 159 WHERE eventType = 59",
                "UPDATE ENUM_NSYS_EVENT_TYPE SET id = 159 WHERE name = 'NvtxPushPopRange'")
    assert read_nsys(p).metadata["nsys"]["counts"]["nvtx_ranges"] == truth_of(TP2)["counts"]["nvtx_ranges"]


def test_missing_names_and_clock_tables(tmp_path):
    p = mutated(tmp_path, "DROP TABLE ThreadNames", "DROP TABLE PROCESSES", "DROP TABLE TARGET_INFO_SESSION_START_TIME",
                "DROP TABLE ANALYSIS_DETAILS", "ALTER TABLE CUPTI_ACTIVITY_KIND_KERNEL DROP COLUMN demangledName")
    t = read_nsys(p)
    assert t.processes.column("name").to_pylist() == ["[4101] pid 4101", "[4102] pid 4102"]
    assert t.metadata["nsys"]["clock_offset_ns"] == 0 and any("relative clock" in w for w in t.warnings)
    assert "BatchPrefillWithRaggedKVCacheKernel" in t.strings("slices", "name")  # shortName instead
    assert any("demangledName" in w for w in t.warnings)


def test_no_nvtx_and_no_runtime_tables_are_said(tmp_path):
    p = mutated(tmp_path, "DROP TABLE NVTX_EVENTS", "DROP TABLE CUPTI_ACTIVITY_KIND_RUNTIME")
    t = read_nsys(p)
    assert any("no NVTX_EVENTS" in w for w in t.warnings) and any("no CUPTI_ACTIVITY_KIND_RUNTIME" in w for w in t.warnings)
    s = layers.summary(t)
    assert s["kernels"] == 100 and s["no_launch_ns"] == s["kernel_ns"]


# ---- the real exports (../shared/corpus/nsys) -------------------------------------------------

corpus = pytest.mark.skipif(not CORPUS.is_dir(), reason="../shared/corpus/nsys is not present (a user's clone has none)")


@corpus
@pytest.mark.parametrize("name", CORPUS_FILES)
def test_corpus_every_range_and_kernel_in_the_perfetto_output(name):
    path = CORPUS / name
    t = read_nsys(path)
    off = t.metadata["nsys"]["clock_offset_ns"]
    d = perfetto(t)
    spans = Counter((s.name, s.start, s.end) for s in d.slices if s.category == "nvtx" and not s.instant)
    want = Counter((text, s + off, e + off) for _, _, s, e, text, _ in sql_ranges(path))
    assert spans == want and sum(want.values()) > 0
    kernels = Counter((s.name, s.start, s.end) for s in d.slices if s.category == "kernel")
    assert kernels == Counter((n, s + off, max(e, s) + off) for n, s, e in sql_kernels(path))


@corpus
@pytest.mark.parametrize("name", CORPUS_FILES)
def test_corpus_kernel_time_per_range_equals_a_direct_sql_join(name):
    path = CORPUS / name
    t = read_nsys(path)
    ours = our_kernel_time_per_range(t)
    sql = sql_kernel_time_per_range(path)
    assert ours == sql and len(sql) > 0
    # and every kernel is in one bucket
    s = layers.summary(t)
    assert sum(s[f"{b}_ns"] for b in layers.ATTRIBUTIONS) == s["kernel_ns"] == sum(max(e - st, 0) for _, st, e in sql_kernels(path))
