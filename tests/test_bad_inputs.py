"""Damaged, hostile and wrong-format inputs (tests/bad_inputs/): every reader either salvages
(exit 0, a warning and counts on stderr) or refuses in one line (exit 1, ``error: <file>...``),
never a traceback, never a hang, memory bounded; truncated traces keep ≥ 99% of their complete
events and say how much was lost; outputs appear atomically or not at all."""

from __future__ import annotations

import gzip
import io
import json
import os
import re
import signal
import subprocess
import sys
import time
import zlib
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.bad_inputs import make_bad_inputs as mk
from tests.perfetto_check import decode
from traceconv.cli import cli, main
from traceconv.cli import output
from traceconv.errors import TraceconvError

ROOT = Path(__file__).resolve().parent.parent
CASES = mk.all_cases()
BIG = mk.big_cases()
TIME_LIMIT_S = 20  # one small case, in-process (most take milliseconds)
BIG_TIME_LIMIT_S = 90
BIG_MEMORY_LIMIT_MB = 1500  # peak RSS of a whole `traceconv` process on a big case


def _commands() -> set[str]:
    from traceconv.cli import _register

    _register()
    return set(cli.commands)


def _skip_unless_command(command: str) -> None:
    if command not in _commands():
        pytest.skip(f"`traceconv {command}` does not exist in this checkout yet")


def _argv(case: mk.Case, path: Path, out_dir: Path) -> list[str]:
    if case.converts:
        return [case.command, str(path), "-o", str(out_dir / "out.pftrace")]
    return [case.command, str(path)]


@contextmanager
def _deadline(seconds: int):
    """Fail (instead of hanging the suite) if the block runs longer than `seconds`."""

    def on_alarm(signum, frame):
        raise TimeoutError(f"still running after {seconds} s")

    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def check_outcome(case: mk.Case, rc: int, err: str, out_dir: Path | None) -> None:
    assert "Traceback" not in err, err
    assert "internal error" not in err, err
    assert "\x1b" not in err, "a control character from the input reached the terminal"
    if case.exit == 1:
        lines = err.strip().splitlines()
        assert rc == 1, f"expected exit 1, got {rc}: {err}"
        assert len(lines) == 1, f"expected one stderr line, got: {err}"
        assert lines[0].startswith("error: "), lines[0]
        assert case.name in lines[0], f"the error does not name the file: {lines[0]}"
        assert case.message.lower() in lines[0].lower(), f"expected {case.message!r} in {lines[0]!r}"
        if out_dir is not None:
            assert not list(out_dir.iterdir()), "a failed run left files behind"
    else:
        assert rc == 0, f"expected exit 0, got {rc}: {err}"
        assert case.message.lower() in err.lower(), f"expected {case.message!r} in stderr: {err}"
        if case.converts:
            assert re.search(r"Converted .*: \d+ slices, \d+ instants, \d+ flows", err), err
            assert [p.name for p in out_dir.iterdir()] == ["out.pftrace"], "temp files left behind"
            decode((out_dir / "out.pftrace").read_bytes())  # our output is a valid trace


def test_corpus_is_big_enough_and_small_on_disk():
    assert len(CASES) + len(BIG) >= 50
    assert len({c.name for c in CASES + BIG}) == len(CASES) + len(BIG)
    size = sum(f.stat().st_size for f in mk.CASES_DIR.rglob("*") if f.is_file())
    assert size < 2 << 20, f"committed corpus is {size} bytes"
    commands = {c.command for c in CASES}
    assert {"otel2perfetto", "torch2perfetto", "iters", "nsys2perfetto"} <= commands


def test_committed_corpus_matches_the_generator(tmp_path):
    mk.write_cases(tmp_path, CASES)
    want = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*"))
    have = sorted(str(p.relative_to(mk.CASES_DIR)) for p in mk.CASES_DIR.rglob("*"))
    assert have == want, "run: python tests/bad_inputs/make_bad_inputs.py"
    for rel in want:
        # compressed and SQLite bytes depend on the zlib/zstd/SQLite versions: names only
        if (tmp_path / rel).is_file() and not rel.endswith((".gz", ".zst", ".sqlite")) and "zstd" not in rel:
            assert (tmp_path / rel).read_bytes() == (mk.CASES_DIR / rel).read_bytes(), rel


def test_readme_lists_every_case():
    text = mk.README.read_text()
    assert mk.render_readme(text, CASES + BIG) == text, "run: python tests/bad_inputs/make_bad_inputs.py"


def _params(cases):
    return [pytest.param(c, id=c.name, marks=[pytest.mark.xfail(reason=c.xfail, strict=True)] if c.xfail else []) for c in cases]


@pytest.mark.parametrize("case", _params(CASES))
def test_bad_input(case, tmp_path, capsys):
    _skip_unless_command(case.command)
    path = mk.CASES_DIR / case.name
    assert path.exists(), "run: python tests/bad_inputs/make_bad_inputs.py"
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    t0 = time.monotonic()
    with _deadline(TIME_LIMIT_S):
        rc = main(_argv(case, path, out_dir))
    elapsed = time.monotonic() - t0
    err = capsys.readouterr().err
    check_outcome(case, rc, err, out_dir if case.converts else None)
    assert elapsed < TIME_LIMIT_S
    if case.converts and rc == 0:  # --strict refuses exactly the runs that lost or repaired data
        damaged = " data_loss\n" in err
        (out_dir / "out.pftrace").unlink()
        with _deadline(TIME_LIMIT_S):
            rc = main(_argv(case, path, out_dir) + ["--strict"])
        err = capsys.readouterr().err
        assert rc == (1 if damaged else 0), err
        if damaged:
            assert err.strip().splitlines()[-1].startswith("error: ") and "--strict" in err
            assert not list(out_dir.iterdir())


_RUNNER = """
import json, resource, sys, time
from traceconv.cli import main
t0 = time.monotonic()
rc = main(sys.argv[1:])
print(json.dumps({"rc": rc, "s": time.monotonic() - t0, "maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
"""


@pytest.fixture(scope="module")
def big_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("big")
    return d


@pytest.mark.parametrize("case", _params(BIG))
def test_big_input_in_bounded_time_and_memory(case, big_dir, tmp_path):
    """Pathological sizes run in their own process: wall-clock and peak RSS are bounded."""
    _skip_unless_command(case.command)
    path = big_dir / case.name
    mk.write_content(path, case.make())
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop("TRACECONV_DEBUG", None)
    proc = subprocess.run([sys.executable, "-c", _RUNNER, *_argv(case, path, out_dir)], capture_output=True, text=True,
                          timeout=BIG_TIME_LIMIT_S, env=env, cwd=ROOT)
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    check_outcome(case, result["rc"], proc.stderr, out_dir if case.converts else None)
    assert result["maxrss_kb"] < BIG_MEMORY_LIMIT_MB * 1024, f"peak RSS {result['maxrss_kb'] // 1024} MB"


# ---- salvage: truncated traces keep >= 99% of their complete events ---------------------------


def _otel_span_ends(data: bytes) -> list[int]:
    """Byte offset where each span object of an OTLP/JSON Lines dump ends (independent of our
    readers: Python's json on each ``{"traceId"`` object that has a name and a start time)."""
    dec = json.JSONDecoder()
    text = data.decode()
    ends = []
    for m in re.finditer(r'\{"traceId"', text):
        obj, end = dec.raw_decode(text, m.start())
        if "startTimeUnixNano" in obj and "name" in obj:
            ends.append(len(text[:end].encode()))
    return ends


def _kineto_event_ends(data: bytes) -> list[int]:
    """End offset of each complete-able X/i/I/B event (becomes a slice or an instant)."""
    dec = json.JSONDecoder()
    text = data.decode()
    ends = []
    for m in re.finditer(r'\{\s*"ph"', text):
        obj, end = dec.raw_decode(text, m.start())
        if obj.get("ph") in ("X", "i", "I", "B") and "ts" in obj:
            ends.append(len(text[:end].encode()))
    return ends


def _offsets(n: int, k: int = 23) -> list[int]:
    return sorted({int(n * (i + 0.5) / k) for i in range(k)} | {n - 1, n - 2, n // 2 + 1})


OTEL_JSONL = ROOT / "fixtures" / "otel" / "sglang_pp2dp2tp2.jsonl"
KINETO_GZ = sorted((ROOT / "fixtures" / "kineto" / "gpu").glob("*.trace.json.gz"))


def _converted(argv: list[str], capsys) -> tuple[int, str]:
    rc = main(argv)
    return rc, capsys.readouterr().err


@pytest.mark.parametrize("compress", [None, "gzip"])
def test_truncated_otel_dump_keeps_99_percent_of_complete_spans(tmp_path, capsys, compress):
    data = OTEL_JSONL.read_bytes()
    ends = _otel_span_ends(data)
    total = len(ends)
    from traceconv.readers import read_otel

    blob = gzip.compress(data, mtime=0) if compress else data
    for cut in _offsets(len(blob)):
        piece = blob[:cut]
        if compress:  # what a reader can get out of the cut gzip
            plain = zlib.decompressobj(wbits=31).decompress(piece)
        else:
            plain = piece
        complete = sum(1 for e in ends if e <= len(plain))
        path = tmp_path / ("cut.jsonl" + (".gz" if compress else ""))
        path.write_bytes(piece)
        try:
            trace = read_otel([path])
        except TraceconvError:
            assert complete == 0, f"cut at {cut}: refused, but {complete} spans were complete"
            continue
        spans = int((trace.column("slices", "span_id") != 0).sum()) if trace.num_slices else 0
        assert spans <= total
        assert spans >= 0.99 * complete, f"cut at {cut}: {spans} of {complete} complete spans"
        rc, err = _converted(["otel2perfetto", str(path), "-o", str(tmp_path / "o.pftrace")], capsys)
        if complete < total and complete > 0:
            assert rc == 0, err
            assert "warning:" in err and re.search(r"kept|skipped|damaged", err), err
        assert "Traceback" not in err


@pytest.mark.parametrize("path", KINETO_GZ[:3], ids=lambda p: p.name)
def test_truncated_kineto_trace_keeps_99_percent_of_complete_events(tmp_path, capsys, path):
    from traceconv.readers.kineto import read_kineto

    data = gzip.decompress(path.read_bytes())
    ends = _kineto_event_ends(data)
    first = min(ends)
    for cut in _offsets(len(data)):
        if cut <= first:
            continue
        complete = sum(1 for e in ends if e <= cut)
        f = tmp_path / "cut.trace.json"
        f.write_bytes(data[:cut])
        trace = read_kineto(f)
        assert trace.num_slices >= 0.99 * complete, f"cut at {cut}: {trace.num_slices} of {complete}"
        assert trace.num_slices <= len(ends)
        rc, err = _converted(["torch2perfetto", str(f), "-o", str(tmp_path / "o.pftrace")], capsys)
        assert rc == 0, err
        if complete < len(ends):  # the loss is reported, with the count kept
            m = re.search(r"converted the (\d+) complete events, lost", err)
            assert m and re.search(r"kineto_truncated_events_lost +1  data_loss", err), err


def test_truncated_gzip_kineto_trace_is_salvaged(tmp_path, capsys):
    raw = KINETO_GZ[0].read_bytes()
    data = gzip.decompress(raw)
    ends = _kineto_event_ends(data)
    from traceconv.readers.kineto import read_kineto

    for frac in (0.3, 0.6, 0.9):
        piece = raw[: int(len(raw) * frac)]
        plain = zlib.decompressobj(wbits=31).decompress(piece)
        complete = sum(1 for e in ends if e <= len(plain))
        f = tmp_path / "cut.trace.json.gz"
        f.write_bytes(piece)
        trace = read_kineto(f)
        assert trace.num_slices >= 0.99 * complete
        assert any("gzip stream damaged" in w for w in trace.warnings)


# ---- run summary --------------------------------------------------------------------------------


def test_run_summary_counts_by_reason_on_stderr_and_in_outputs(tmp_path, capsys):
    path = mk.CASES_DIR / "kineto_unknown_ph.trace.json"
    out_json = tmp_path / "o.json"
    assert main(["torch2perfetto", str(path), "-o", str(out_json)]) == 0
    err = capsys.readouterr().err
    assert re.search(r"run summary \(by reason\):\n  chrome_unsupported_ph_P +1  info\n  chrome_unsupported_ph_Z +1  info\n", err), err
    summary = json.loads(out_json.read_text())["otherData"]["traceconv"]
    assert summary["severity"]["chrome_unsupported_ph_Z"] == "info" and summary["warnings"]
    stats = summary["stats"]
    assert stats["chrome_unsupported_ph_Z"] == 1 and stats["chrome_unsupported_ph_P"] == 1
    assert all(v for v in stats.values()), "zero counts are not listed"
    out_pf = tmp_path / "o.pftrace"
    assert main(["torch2perfetto", str(path), "-o", str(out_pf)]) == 0
    capsys.readouterr()
    meta = perfetto_run_summary(out_pf.read_bytes())
    assert meta["traceconv_stats.chrome_unsupported_ph_Z"] == 1
    assert json.loads(meta["traceconv_stats"])["chrome_unsupported_ph_P"] == 1


def perfetto_run_summary(data: bytes) -> dict:
    """The ChromeEventBundle metadata entries (trace processor: ``metadata`` rows ``cr-<name>``)."""
    from perfetto.protos.perfetto.trace import perfetto_trace_pb2 as pb

    trace = pb.Trace()
    trace.ParseFromString(data)
    out = {}
    for p in trace.packet:
        if p.HasField("chrome_events"):
            for m in p.chrome_events.metadata:
                out[m.name] = getattr(m, m.WhichOneof("value"))
    return out


def test_clean_input_has_no_stats_noise(tmp_path, capsys):
    path = ROOT / "fixtures" / "otel" / "generic_service.jsonl"
    assert main(["otel2perfetto", str(path), "-o", str(tmp_path / "o.pftrace")]) == 0
    err = capsys.readouterr().err
    assert "warning" not in err and "run summary" not in err, err
    assert re.fullmatch(r"Converted 1 input\(s\) in [\d.]+ s: \d+ slices, \d+ instants, \d+ flows\nWrote .*\n", err), err


# ---- atomic output ------------------------------------------------------------------------------


GOOD_OTEL = ROOT / "fixtures" / "otel" / "generic_service.jsonl"


def test_output_equal_to_an_input_is_refused(tmp_path, capsys):
    src = tmp_path / "dump.jsonl"
    src.write_bytes(GOOD_OTEL.read_bytes())
    before = src.read_bytes()
    assert main(["otel2perfetto", str(src), "-o", str(src)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "refusing" in err[0]
    link = tmp_path / "link.pftrace"
    link.symlink_to(src)
    assert main(["otel2perfetto", str(src), "-o", str(link)]) == 1
    assert "refusing" in capsys.readouterr().err
    relative = os.path.relpath(src)
    assert main(["otel2perfetto", relative, "-o", str(src)]) == 1
    capsys.readouterr()
    assert src.read_bytes() == before


def test_failed_write_leaves_nothing_and_keeps_the_old_file(tmp_path, capsys, monkeypatch):
    import traceconv.cli.convert as convert_mod

    out = tmp_path / "o.pftrace"
    out.write_bytes(b"old")

    def broken(trace, f, fmt, **kw):
        f.write(b"partial bytes")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(convert_mod, "write_trace", broken)
    assert main(["otel2perfetto", str(GOOD_OTEL), "-o", str(out)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "No space left" in err[0] and str(out) in err[0]
    assert out.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o.pftrace"]

    def interrupted(trace, f, fmt):
        f.write(b"partial bytes")
        raise KeyboardInterrupt

    monkeypatch.setattr(convert_mod, "write_trace", interrupted)
    new = tmp_path / "new.pftrace"
    assert main(["otel2perfetto", str(GOOD_OTEL), "-o", str(new)]) in (1, 130)  # click turns ^C into "Aborted."
    capsys.readouterr()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o.pftrace"]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
@pytest.mark.parametrize("anonymous", [True, False], ids=["O_TMPFILE", "named-temp"])
def test_a_killed_run_leaves_no_partial_output(tmp_path, sig, anonymous):
    """A killed run (SIGTERM as a CI timeout sends; SIGKILL as the OOM killer does) leaves
    neither the output nor a temp file (SIGKILL: only where the OS has O_TMPFILE)."""
    if sig == signal.SIGKILL and not anonymous:
        pytest.skip("a named temp file cannot be removed after SIGKILL; that is what O_TMPFILE is for")
    if anonymous and output._anonymous_file(str(tmp_path)) is None:
        pytest.skip("no O_TMPFILE on this OS/file system")
    big = tmp_path / "big.jsonl"
    line = OTEL_JSONL.read_bytes()
    big.write_bytes(line * 40)
    out = tmp_path / "o.pftrace"
    code = (
        "import time, traceconv.cli.convert as c, traceconv.cli.output as o\n"
        + ("" if anonymous else "o._anonymous_file = lambda d: None\n")
        + "def slow(t, f, fmt, **kw):\n"
        "    f.write(b'x' * 100000); f.flush(); print('writing', flush=True); time.sleep(30)\n"
        "c.write_trace = slow\n"
        "from traceconv.cli import main\n"
        f"raise SystemExit(main(['otel2perfetto', {str(big)!r}, '-o', {str(out)!r}]))\n"
    )
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True)
    assert proc.stdout.readline().strip() == "writing"
    named_temp = [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    assert bool(named_temp) != anonymous, named_temp
    proc.send_signal(sig)
    proc.wait(timeout=30)
    assert proc.returncode != 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.jsonl"]


def _no_link(*a, **k):
    raise OSError(18, "Invalid cross-device link")


@pytest.mark.parametrize("anonymous", [True, "copy", False], ids=["O_TMPFILE", "O_TMPFILE-copied", "named-temp"])
def test_atomic_output_replaces_and_keeps_the_umask(tmp_path, monkeypatch, anonymous):
    if not anonymous:
        monkeypatch.setattr(output, "_anonymous_file", lambda d: None)
    if anonymous == "copy":  # neither link through /proc nor AT_EMPTY_PATH allowed
        monkeypatch.setattr(output.os, "link", _no_link)
        monkeypatch.setattr(output, "_linkat_empty_path", lambda fd, dest: False)
    target = tmp_path / "o.bin"
    target.write_bytes(b"old")
    old_umask = os.umask(0o022)
    try:
        with output.atomic_output(str(target)) as f:
            f.write(b"new")
            assert target.read_bytes() == b"old"  # not visible before the block ends
    finally:
        os.umask(old_umask)
    assert target.read_bytes() == b"new"
    assert (target.stat().st_mode & 0o777) == 0o644
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o.bin"]
    with pytest.raises(RuntimeError), output.atomic_output(str(target)) as f:
        f.write(b"half")
        raise RuntimeError("stop")
    assert target.read_bytes() == b"new" and sorted(p.name for p in tmp_path.iterdir()) == ["o.bin"]


def test_unwritable_output_is_one_line(tmp_path, capsys):
    target = tmp_path / "adir"
    target.mkdir()
    assert main(["otel2perfetto", str(GOOD_OTEL), "-o", str(target)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and str(target) in err[0]
    assert list(target.iterdir()) == []


@pytest.mark.parametrize("name", ["kineto_empty_events.trace.json", "kineto_bare_array.json"])
def test_exported_dataset_without_args_or_flows_reads_back(name, tmp_path, capsys):
    """A dataset part with no args/flows/counters (or no slices) still reads back (found by the
    Parquet round-trip property test: the reader failed on the empty table directories)."""
    _skip_unless_command("export")
    out = tmp_path / "ds"
    assert main(["export", str(mk.CASES_DIR / name), "-o", str(out)]) == 0
    rc = main(["steps", str(out)])
    err = capsys.readouterr().err
    assert rc == 0 and "internal error" not in err, err


@pytest.mark.parametrize("times,ok", [
    ([(-(1 << 63), -1)], True),  # one instant at the smallest int64: shifted to 0
    ([((1 << 63) - 10, 100)], False),  # ends past int64
    ([(-(1 << 62), 0), (1 << 62, 0)], False),  # spans more than 2^63 ns
    ([(-5, 10), (0, 3)], True),
])
def test_perfetto_writer_takes_or_refuses_extreme_times(times, ok):
    """Times near int64's ends (damaged input that reached a writer) are shifted or refused in
    one line, never wrapped around or raised as OverflowError (found by fuzzing the nsys reader)."""
    import io as _io

    from traceconv.model.trace import TraceBuilder
    from traceconv.writers import write_trace

    b = TraceBuilder()
    t = b.add_track(b.add_process(1, "p"), 1, "t")
    for ts, dur in times:
        b.add_slice(ts, dur, t, "s")
    trace = b.build().validate()
    buf = _io.BytesIO()
    if ok:
        write_trace(trace, buf, "perfetto")
        starts = sorted(s.start for s in decode(buf.getvalue()).slices)
        lowest = min(ts for ts, _ in times)
        assert starts == sorted(ts - lowest for ts, _ in times)
    else:
        with pytest.raises(TraceconvError):
            write_trace(trace, buf, "perfetto")
    write_trace(trace, _io.BytesIO(), "json")


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="no /dev/zero")
@pytest.mark.parametrize("argv", [["otel2perfetto", "/dev/zero", "-o", "{out}/x.pftrace"], ["torch2perfetto", "/dev/zero", "-o", "{out}/x.pftrace"],
                                  ["iters", "/dev/zero"], ["steps", "/dev/zero"], ["requests", "/dev/zero"]], ids=lambda a: a[0])
def test_an_endless_device_is_refused_at_once(argv, tmp_path, capsys):
    """/dev/zero would be read forever (and buffered without bound): refused before reading."""
    with _deadline(10):
        rc = main([a.format(out=tmp_path) for a in argv])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 1 and len(err) == 1 and "/dev/zero" in err[0] and "device" in err[0], err
    assert not list(tmp_path.iterdir())


def test_zero_filled_file_is_not_an_otel_dump(tmp_path, capsys):
    path = tmp_path / "zeros.bin"
    path.write_bytes(bytes(1 << 20))
    assert main(["otel2perfetto", str(path), "-o", str(tmp_path / "x.pftrace")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "NUL bytes" in err[0] and "zeros.bin" in err[0], err


@pytest.mark.parametrize("command", ["steps", "requests"])
def test_analysis_commands_print_the_run_summary_for_damaged_input(command, tmp_path, capsys):
    if command == "steps":
        data = gzip.decompress(KINETO_GZ[0].read_bytes())
        path = tmp_path / "cut.trace.json"
    else:
        data = OTEL_JSONL.read_bytes()
        path = tmp_path / "cut.jsonl"
    path.write_bytes(data[: len(data) * 2 // 3])
    assert main([command, str(path), "--format", "csv", "-o", str(tmp_path / "t.csv")]) == 0
    err = capsys.readouterr().err
    assert "run summary (by reason):" in err and "data_loss" in err, err


def test_forked_workers_die_on_sigterm_whatever_the_parent_installed():
    """Workers reset SIGTERM to its default: a handler inherited from the parent (the CLI's
    clean-exit one) must not keep a worker alive."""
    import signal

    from traceconv.forked import imap_forked

    old = signal.signal(signal.SIGTERM, lambda *a: None)
    try:
        got = list(imap_forked(_sigterm_disposition, range(6), 2))
    finally:
        signal.signal(signal.SIGTERM, old)
    assert [x for x, _ in got] == list(range(6))
    assert {d for _, d in got} == {int(signal.SIG_DFL)}


def test_forked_worker_that_dies_is_reported_not_waited_for():
    """A worker killed mid-way (OOM killer, segfault) is an error, at once: never a hang."""
    import time

    from traceconv.forked import WorkerDied, imap_forked

    t0 = time.monotonic()
    with pytest.raises(WorkerDied, match="died before sending its result"):
        list(imap_forked(_die_on_three, range(6), 2))
    assert time.monotonic() - t0 < 20


def test_forked_worker_exceptions_reach_the_caller():
    from traceconv.errors import MalformedTraceError
    from traceconv.forked import imap_forked

    with pytest.raises(MalformedTraceError, match="x.json:line 3: bad 4"):
        list(imap_forked(_bad_on_four, range(6), 3))


def _die_on_three(x):
    if x == 3:
        os._exit(9)
    return x


def _bad_on_four(x):
    from traceconv.errors import MalformedTraceError

    if x == 4:
        raise MalformedTraceError(f"bad {x}", source="x.json", where="line 3")
    return x


def _sigterm_disposition(x):
    import signal

    return x, int(signal.getsignal(signal.SIGTERM))


@pytest.mark.parametrize("fmt", ["gzip", "zstd"])
def test_compressed_streams_read_whole_whatever_the_read_size(fmt):
    """An intact file is never reported damaged: the decompressor's leftover input at the end
    of a member (trailer, next member) is kept right however the reads fall (a 1 MB read once
    misplaced it and flagged real Kineto traces as having trailing garbage)."""
    from traceconv.readers.source import open_source

    # Kineto-like text: compresses ~15x, so a member's last input chunk outlasts a read
    raw = b"".join(b'  {\n    "ph": "X", "cat": "kernel", "name": "k%d", "pid": 0, "tid": 7,\n    "ts": %d.%03d, "dur": %d\n  },\n'
                   % (i % 97, 1000000 + i * 13, i % 1000, i % 50) for i in range(200_000))
    if fmt == "gzip":
        blob = gzip.compress(raw[: len(raw) // 2], mtime=0) + gzip.compress(raw[len(raw) // 2 :], mtime=0)
    else:
        import zstandard

        blob = zstandard.ZstdCompressor().compress(raw)
    for size in (4096, 65536, 100_003, 1 << 20, 2 << 20, 3 << 20, 1 << 23):
        src = open_source(io.BytesIO(blob), name=f"x.{fmt}")
        got = bytearray()
        while chunk := src.stream.read(size):
            got += chunk
        assert src.damage == [], size
        assert bytes(got) == raw
