"""Write a large SGLang-shaped OTLP/JSON span dump for benchmarks.

Usage::

    . .venv/bin/activate
    python benchmarks/make_otel_dump.py --spans 200000 -o /tmp/sglang_200k.jsonl
    python benchmarks/make_otel_dump.py --spans 1000000 -o /tmp/sglang_1m.jsonl.gz

The spans come from the same generator as ``fixtures/make_otel_fixtures.py`` (same
topology, names, attributes, links, events and edge cases; the first 8 requests are the
fixture's requests exactly), created through the real OpenTelemetry SDK and written by the
real ``opentelemetry-exporter-otlp-json-file`` FileSpanExporter. Only the batching differs:
each engine process flushes a line every 64 spans, like SGLang's BatchSpanProcessor
(``SGLANG_OTLP_EXPORTER_MAX_EXPORT_BATCH_SIZE=64``), synchronously and in span end-call
order, so the file is JSON Lines, one ExportTraceServiceRequest per line, not time-sorted.
Requests after the 8th carry ``--decode-min``..``--decode-max`` decode iterations, so
decode_loop slices dominate, as in a real dump.

Deterministic: the same arguments give the same bytes. Roughly 50 µs and 400 bytes per span
(about 80 MB and 10-15 s for 200k spans on one core). A ``.gz`` suffix gzips the output.
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import importlib.util
import io
import sys
import time
from pathlib import Path

from opentelemetry.exporter.otlp.json.file import FileSpanExporter
from opentelemetry.sdk.trace import SpanProcessor

_FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "make_otel_fixtures.py"


def _load_generator():
    spec = importlib.util.spec_from_file_location("make_otel_fixtures", _FIXTURES)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look the module up by name
    spec.loader.exec_module(module)
    return module


@contextlib.contextmanager
def _open_text(path: Path):
    """Text stream to ``path``; gzip (with a zero mtime, for identical bytes) for ``.gz``."""
    with open(path, "wb") as raw:
        if path.suffix == ".gz":
            with gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as gz:
                with io.TextIOWrapper(gz, encoding="utf-8", newline="\n") as text:
                    yield text
        else:
            with io.TextIOWrapper(raw, encoding="utf-8", newline="\n") as text:
                yield text


class EveryNSpans(SpanProcessor):
    """A synchronous BatchSpanProcessor stand-in: export every ``batch`` ended spans."""

    def __init__(self, exporter: FileSpanExporter, batch: int, counter: list[int]) -> None:
        self._exporter = exporter
        self._batch = batch
        self._buffer = []
        self._counter = counter  # [lines written, spans written], shared by all processes

    def on_end(self, span) -> None:
        self._buffer.append(span)
        if len(self._buffer) >= self._batch:
            self.force_flush()

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        if self._buffer:
            self._exporter.export(self._buffer)
            self._counter[0] += 1
            self._counter[1] += len(self._buffer)
            self._buffer = []
        return True

    def shutdown(self) -> None:
        self.force_flush()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spans", type=int, default=200_000, help="at least this many spans (default 200000)")
    parser.add_argument("-o", "--output", type=Path, required=True, help=".jsonl, or .jsonl.gz to gzip")
    parser.add_argument("--batch", type=int, default=64, help="spans per line per process (default 64)")
    parser.add_argument("--decode-min", type=int, default=4, help="decode iterations per request, min (default 4)")
    parser.add_argument("--decode-max", type=int, default=16, help="decode iterations per request, max (default 16)")
    args = parser.parse_args(argv)
    if args.decode_min < 1 or args.decode_max < args.decode_min:
        parser.error("need 1 <= --decode-min <= --decode-max")

    gen = _load_generator()
    args.output.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    with _open_text(args.output) as stream:
        exporter = FileSpanExporter(stream=stream)
        counter = [0, 0]
        processors = []

        def make_processor():
            processors.append(EveryNSpans(exporter, args.batch, counter))
            return processors[-1]

        # Every request has at least 28 spans, so this many planned requests is enough.
        _, _, _, plans, _ = gen.build_sglang_spans(
            make_processor,
            n_requests=max(gen.N_REQUESTS, args.spans // 28 + 1),
            decode_range=(args.decode_min, args.decode_max),
            stop_after_spans=args.spans,
        )
        for processor in processors:  # the final partial batch of each process
            processor.force_flush()
    elapsed = time.perf_counter() - started
    size = args.output.stat().st_size
    print(
        f"Wrote {args.output}: {counter[1]} spans, {len(plans)} requests, {counter[0]} lines, "
        f"{size / 1e6:.1f} MB ({size / counter[1]:.0f} B/span on disk) in {elapsed:.1f} s "
        f"({counter[1] / elapsed:,.0f} spans/s)",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
