"""Write the example notebooks (outputs stripped; the test suite executes them).

    python notebooks/make_notebooks.py

Notebooks use the public API only: no analysis logic is defined in them.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent

SETUP = """\
from pathlib import Path
import traceconv
ROOT = Path.cwd() if (Path.cwd() / "fixtures").is_dir() else Path.cwd().parent
FIX = ROOT / "fixtures"
"""

NOTEBOOKS = {
    "1_requests_and_pipeline.ipynb": [
        new_markdown_cell("# Request stages and pipeline bubbles from an OTel dump\n\n"
                          "Where does a request's latency go, and where are the pipeline bubbles? "
                          "This reads SGLang's request tracing (OpenTelemetry spans) from the shipped fixtures."),
        new_code_cell(SETUP + "from analyzers import requests, pipeline"),
        new_code_cell('trace = traceconv.read_otel([FIX / "otel" / "sglang_pp2dp2tp2.jsonl"])\n'
                      "trace.processes.to_pandas()[[\"name\", \"sort_index\"]]"),
        new_markdown_cell("One row per request: role, ranks touched, end-to-end time, TTFT, queueing vs compute."),
        new_code_cell("rs = requests.analyze(trace)\nrs.requests.head()"),
        new_markdown_cell("Per-stage latency percentiles (each stage summed over the threads that ran it)."),
        new_code_cell("rs.summary()"),
        new_code_cell('rs.summary(by=["dp_rank"]).head(12)'),
        new_markdown_cell("## Pipeline parallelism\n\n`run_batch_cpu` spans (trace level 4) carry the micro-batch id; "
                          "this dump has a deliberately stalled PP rank."),
        new_code_cell('pp = pipeline.analyze(traceconv.read_otel([FIX / "otel" / "pp_stalled.jsonl"]))\npp.ranks'),
        new_code_cell("pp.stalled"),
        new_code_cell('ax = pp.ranks.plot.bar(x="rank", y="bubble_share", legend=False, title="share of the pipeline stall per PP rank")'),
    ],
    "2_step_attribution.ipynb": [
        new_markdown_cell("# GPU time per forward step: decode vs prefill vs mixed\n\n"
                          "A GPU op belongs to the `step[...]` range that, on the launching thread, contains the whole "
                          "launching call (the nsys `nvtx_kern_sum` rule); CUDA-graph kernels follow their graph launch."),
        new_code_cell(SETUP + "from analyzers import steps"),
        new_code_cell('files = sorted((FIX / "kineto" / "gpu").glob("1769071195.66-TP-*.trace.json.gz"))\n'
                      "trace = traceconv.read_trace(files)\ntrace.processes.to_pandas()[[\"name\"]]"),
        new_code_cell("per_step = steps.per_step(trace)\n"
                      'per_step[["rank", "step", "label", "mode", "bs", "toks", "n_kernels", "kernel_ns", "busy_ns", "launch_delay_ns"]].head(14)'),
        new_code_cell("steps.per_mode(trace)"),
        new_code_cell("steps.per_mode(trace, by_rank=True)"),
        new_code_cell("steps.top_kernels(trace, n=3)"),
        new_code_cell("steps.stragglers(trace)"),
        new_code_cell('ax = steps.per_mode(trace).plot.bar(x="mode", y="kernel_ns", legend=False, title="kernel time per mode (ns)")'),
        new_code_cell('ax = per_step[per_step["depth"] == 0].pivot(index="step", columns="rank", values="kernel_ns")'
                      '.plot(marker=".", title="kernel time per step")'),
    ],
    "3_iteration_checks.ipynb": [
        new_markdown_cell("# Can the scheduler log's iteration ids be trusted?\n\n"
                          "Under overlap scheduling, builds before the `forward_iter` fix labelled completed batches with a "
                          "later iteration. This checks simulated logs of both kinds and lines a log up with a trace's steps."),
        new_code_cell(SETUP + "from analyzers import iterations, sglang_log, steps"),
        new_code_cell('logs = sorted((FIX / "logs").glob("*.log*"))\n[p.name for p in logs]'),
        new_markdown_cell("A simulated log of an overlap-scheduling server **before** the fix (DP=2 × PP=2, gzip):"),
        new_code_cell('with open(FIX / "logs" / "overlap_old_dp2pp2.log.gz", "rb") as f:\n'
                      '    lines = sglang_log.parse_log(f)\n'
                      'lines.head()'),
        new_code_cell("found = iterations.check(lines)\nprint(found.verdict())\nfound.findings.head(10)"),
        new_code_cell("found.findings.groupby(\"reason\").size()"),
        new_markdown_cell("The same workload **after** the fix:"),
        new_code_cell('with open(FIX / "logs" / "overlap_fixed_dp2pp2.log.gz", "rb") as f:\n'
                      '    fixed = iterations.check(sglang_log.parse_log(f))\n'
                      'print(fixed.verdict())'),
        new_markdown_cell("## Lining a log up with a trace\n\nThe trace's `step[...]` ranges (and `ProfilerStep#N`) give the steps; "
                          "log lines are matched by time and mode."),
        new_code_cell('trace = traceconv.read_trace(sorted((FIX / "kineto" / "gpu").glob("1769071195.66-TP-0-*.trace.json.gz")))\n'
                      "steps.trace_steps(trace).head()"),
    ],
}


def main() -> None:
    for name, cells in NOTEBOOKS.items():
        nb = new_notebook(cells=cells, metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})
        nbformat.write(nb, HERE / name)
        print("wrote", HERE / name)


if __name__ == "__main__":
    main()
