"""traceconv export: a Parquet dataset partitioned by rank that other engines read without us,
that the analyzers accept, identical whether written by one worker or two, and analysable on a
real dask.distributed LocalCluster."""

from __future__ import annotations

import io
import json
from collections import Counter
from pathlib import Path

import pandas as pd
import pyarrow.dataset as ds
import pytest

import traceconv
from analyzers import steps
from tests.perfetto_check import decode
from traceconv.cli import main
from traceconv.model.merge import concat
from traceconv.writers import write_trace

ROOT = Path(__file__).resolve().parent.parent
GPU = sorted((ROOT / "fixtures" / "kineto" / "gpu").glob("*.trace.json.gz"))
OTEL = ROOT / "fixtures" / "otel" / "sglang_pp2dp2tp2.jsonl"


def signature(trace):
    buf = io.BytesIO()
    write_trace(trace, buf)
    d = decode(buf.getvalue())
    return Counter((s.name, s.category, s.start, s.end, json.dumps(s.args, sort_keys=True, default=str)) for s in d.slices), len(d.flows())


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    out = tmp_path_factory.mktemp("ds") / "dataset"
    assert main(["-q", "export", *map(str, GPU), str(OTEL), "-o", str(out), "-j", "1"]) == 0
    return out


def test_round_trip_is_lossless(dataset):
    original = concat([traceconv.read_kineto(p) for p in GPU] + [traceconv.read_otel([OTEL])])
    back = traceconv.read_trace(str(dataset))
    back.validate()
    assert signature(back) == signature(original)


def test_other_engines_read_it_without_us(dataset):
    meta = json.loads((dataset / "_traceconv.json").read_text())
    assert meta["schema"] == "traceconv-dataset/1"
    table = ds.dataset(dataset / "slices", format="parquet", partitioning="hive").to_table()
    total = sum(p["rows"]["slices"] for p in meta["parts"])
    assert table.num_rows == total
    df = table.to_pandas()
    assert df["ts_ns"].dtype == "int64" and "rank" in df
    assert "PP0-DP0-TP0_EXTEND" in set(df["rank"].astype(str))
    duckdb = pytest.importorskip("duckdb")
    n = duckdb.sql(f"select count(*) from read_parquet('{dataset}/slices/*/*.parquet', hive_partitioning=true)").fetchall()[0][0]
    assert n == total
    kernels = duckdb.sql(
        f"select count(*) from read_parquet('{dataset}/slices/*/*.parquet', hive_partitioning=true) where category in ('kernel', 'Kernel')"
    ).fetchall()[0][0]
    assert kernels == sum(json.loads(p.with_name(p.name.replace(".trace.json.gz", "").removesuffix(".pt") + ".truth.json").read_text())["totals"]["n_kernels"] for p in GPU)


def test_parallel_export_equals_serial(dataset, tmp_path):
    out = tmp_path / "j2"
    assert main(["-q", "export", *map(str, GPU), str(OTEL), "-o", str(out), "-j", "2"]) == 0
    a = traceconv.read_trace(str(dataset))
    b = traceconv.read_trace(str(out))
    assert signature(a) == signature(b)


def test_analyzers_accept_the_dataset(dataset):
    from_files = steps.per_mode(traceconv.read_trace(GPU), by_rank=True)
    from_dataset = steps.per_mode(traceconv.read_trace(str(dataset)), by_rank=True)
    cols = ["rank", "mode", "steps", "n_gpu_ops", "kernel_ns", "busy_ns"]
    key = ["rank", "mode"]
    pd.testing.assert_frame_equal(
        from_files[cols].sort_values(key).reset_index(drop=True), from_dataset[cols].sort_values(key).reset_index(drop=True)
    )


def test_refuses_to_overwrite_without_force(dataset, capsys):
    assert main(["export", str(GPU[0]), "-o", str(dataset)]) == 1
    assert "exists" in capsys.readouterr().err


def test_steps_on_a_dask_local_cluster(dataset):
    distributed = pytest.importorskip("dask.distributed")
    from analyzers import fleet

    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        with distributed.Client(cluster) as client:
            on_cluster = fleet.per_mode(client, str(dataset))
    local = steps.per_mode(traceconv.read_trace(str(dataset)), by_rank=True)
    cols = ["rank", "mode", "steps", "kernel_ns", "busy_ns"]
    a = on_cluster[cols].sort_values(["rank", "mode"]).reset_index(drop=True)
    b = local[cols].sort_values(["rank", "mode"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(a, b, check_dtype=False)
