"""Analyses over a traceconv Parquet dataset, one task per rank, on a Dask cluster.

Attribution is per rank (a GPU op belongs to a step on its own launching thread), so each
rank's partition is analysed where it lies and only the small result tables travel. Dask is an
optional extra (``pip install 'traceconv[dask]'``).

Examples:
    >>> from dask.distributed import Client
    >>> client = Client("tcp://scheduler:8786")
    >>> fleet.per_mode(client, "dataset/")          # same columns as steps.per_mode(by_rank=True)
    >>> fleet.per_step(client, "dataset/")
"""

from __future__ import annotations

import json
import os

import pandas as pd

from analyzers import steps


def ranks(directory: str) -> list[str]:
    """The rank partitions of a dataset (from its ``_traceconv.json``)."""
    with open(os.path.join(directory, "_traceconv.json")) as f:
        meta = json.load(f)
    out: list[str] = []
    for part in meta.get("parts", []):
        out += [r for r in part.get("ranks", []) if r not in out]
    return out


def _task(directory: str, rank: str, what: str) -> pd.DataFrame:
    from traceconv.readers.parquet import read_dataset

    trace = read_dataset(directory, ranks=[rank])
    if what == "per_step":
        return steps.per_step(trace)
    return steps.per_mode(trace, by_rank=True)


def _run(client, directory: str, what: str) -> pd.DataFrame:
    if client is None:
        raise ValueError("a dask.distributed Client is needed (see analyzers.fleet docs)")
    directory = os.path.abspath(directory)
    futures = [client.submit(_task, directory, r, what, pure=False) for r in ranks(directory)]
    parts = [p for p in client.gather(futures) if len(p)]
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def per_mode(client, directory: str) -> pd.DataFrame:
    """`steps.per_mode(by_rank=True)` for every rank of the dataset, computed on the cluster."""
    return _run(client, directory, "per_mode")


def per_step(client, directory: str) -> pd.DataFrame:
    """`steps.per_step` for every rank of the dataset, computed on the cluster."""
    return _run(client, directory, "per_step")
