"""The baseline the otel2perfetto speed target is measured against: SGLang's
`scripts/convert_otel_2_perfetto.py` *approach*, written here from its description in
../shared/reference/sglang.md §1 (not a copy of its code), step for step:

1. load the whole file: `json.load` for a JSON array, else `json.loads` per line;
2. keep resources whose `service.name` is `sglang` or `smg`; flatten each span's attributes to
   a dict of the first value (so `intValue` stays a string), in place;
3. build the span tree: an id → span dict, child lists, roots by the `module` attribute
   (`sglang::request` / `sglang::mooncake`), links resolved to span objects;
4. per root, per thread span (a child of the root): process `pid` = the `pid` attribute, named
   `host[:8]:thread_label-PP-DP-TP` (first seen wins); every slice below it recursively becomes a
   Chrome `X` event (float µs, end shortened by 1000 ns, `rid`/`bootstrap_room` copied in);
5. layout: each request's slices sorted by start, requests sorted by their first slice; per pid,
   greedy packing onto lines kept as sorted interval lists (bisect overlap check, insort), the
   request's previous line tried first; a new line adds a `thread_name` "slot" record;
   descendants take their top slice's line;
6. span events → thread-scoped instants with their attributes; links → `s`/`f` flow pairs with
   an id from a global counter written back into the linked slice's `args.correlation`;
7. gather everything recursively and `json.dump(..., ensure_ascii=False, indent=4)`.

Two deviations, both so that it runs on any dump instead of crashing: a root without slices is
skipped (the script raises IndexError) and a thread span without `pid`/`host_id`/`thread_label`
is skipped (KeyError). Neither makes it slower.
"""

from __future__ import annotations

import bisect
import itertools
import json

ROOT_MODULES = ("sglang::request", "sglang::mooncake")


def _flat(attrs: list) -> dict:
    return {a.get("key"): next(iter(a.get("value", {}).values()), None) for a in attrs}


def _load(path: str) -> list:
    with open(path, encoding="utf-8") as f:
        head = f.read(1)
        f.seek(0)
        if head == "[":
            return json.load(f)
        return [json.loads(line) for line in f if line.strip()]


def _spans(docs: list) -> tuple[list, list]:
    engine, smg = [], []
    for doc in docs:
        for rs in doc.get("resourceSpans", []):
            service = ""
            for a in rs.get("resource", {}).get("attributes", []):
                if a["key"] == "service.name":
                    service = a["value"].get("stringValue", "")
            bucket = engine if service == "sglang" else smg if service == "smg" else None
            if bucket is None:
                continue
            for ss in rs.get("scopeSpans", []):
                for sp in ss.get("spans", []):
                    sp["attributes"] = _flat(sp["attributes"]) if "attributes" in sp else {}
                    bucket.append(sp)
    return engine, smg


def _tree(spans: list) -> list:
    by_id = {sp["spanId"]: sp for sp in spans}
    for sp in spans:
        sp["child"] = []
    roots = []
    for sp in spans:
        if sp["attributes"].get("module", "") in ROOT_MODULES:
            roots.append(sp)
        elif sp.get("parentSpanId", "") in by_id:
            by_id[sp["parentSpanId"]]["child"].append(sp)
        if "links" in sp:
            sp["links"] = [by_id[ln["spanId"]] for ln in sp["links"] if ln.get("spanId") in by_id]
    return roots


def _to_event(sp: dict, rid, room, pid) -> None:
    attrs = sp["attributes"]
    if room:
        attrs["bootstrap_room"] = room
    if rid:
        attrs["rid"] = rid
    sp["start"] = int(sp["startTimeUnixNano"])
    sp["end"] = int(sp["endTimeUnixNano"]) - 1000
    sp["ev"] = {"ph": "X", "name": sp.get("name", "unknown"), "cat": "sglang", "ts": sp["start"] / 1000.0,
                "dur": (sp["end"] - sp["start"]) / 1000.0, "pid": pid, "tid": 0, "args": attrs}
    for c in sp["child"]:
        _to_event(c, rid, room, pid)


def _set_tid(sp: dict, line: int) -> None:
    sp["ev"]["tid"] = line
    for c in sp["child"]:
        _set_tid(c, line)


def _overlaps(intervals: list, start: int, end: int) -> bool:
    i = bisect.bisect_left(intervals, (start, float("-inf")))
    if i > 0 and intervals[i - 1][1] > start:
        return True
    return i < len(intervals) and intervals[i][0] < end


def _line(lines: dict, last: dict, meta: list, pid, start: int, end: int) -> int:
    if pid in last:
        line = last[pid]
        if start == end or not _overlaps(lines[pid][line], start, end):
            return line
    if pid not in lines:
        lines[pid] = {1: []}
        meta.append({"name": "thread_name", "ph": "M", "pid": pid, "tid": 1, "args": {"name": "slot"}})
        last[pid] = 1
        return 1
    for line, intervals in lines[pid].items():
        if not _overlaps(intervals, start, end):
            last[pid] = line
            return line
    line = len(lines[pid]) + 1
    lines[pid][line] = []
    meta.append({"name": "thread_name", "ph": "M", "pid": pid, "tid": line, "args": {"name": "slot"}})
    last[pid] = line
    return line


def _instants(sp: dict) -> None:
    ev = sp["ev"]
    sp["inst"] = [
        {"ph": "i", "cat": "sglang", "ts": int(e["timeUnixNano"]) / 1000.0, "pid": ev["pid"], "tid": ev["tid"],
         "name": e.get("name", "unknown"), "args": _flat(e.get("attributes", []))}
        for e in sp.get("events", [])
    ]
    for c in sp["child"]:
        _instants(c)


def _gather(sp: dict, out: list) -> None:
    out.append(sp["ev"])
    out.extend(sp.get("inst", ()))
    out.extend(sp.get("flows", ()))
    for c in sp["child"]:
        _gather(c, out)


def convert(path: str, out: str) -> int:
    """Convert like SGLang's script; returns the number of spans read."""
    engine, smg = _spans(_load(path))
    roots = _tree(engine)
    procs: dict = {}
    for root in roots:
        rid = root["attributes"].get("rid")
        room = root["attributes"].get("bootstrap_room", "")
        root["slices"] = []
        for th in root["child"]:
            a = th["attributes"]
            if not all(k in a for k in ("pid", "host_id", "thread_label")):
                continue
            pid = int(a["pid"])
            name = f"{a['host_id'][:8]}:{a['thread_label']}"
            for key, tag in (("pp_rank", "PP"), ("dp_rank", "DP"), ("tp_rank", "TP")):
                if key in a:
                    name += f"-{tag}{a[key]}"
            procs.setdefault(pid, {"name": "process_name", "ph": "M", "pid": pid, "args": {"name": name}})
            for sp in th["child"]:
                _to_event(sp, rid, room, pid)
                root["slices"].append(sp)
    procs["smg"] = {"name": "process_name", "ph": "M", "pid": "smg", "args": {"name": "smg"}}
    for sp in smg:
        sp["child"] = sp.get("child", [])
        _to_event(sp, None, None, "smg")

    # layout
    roots = [r for r in roots if r.get("slices")]
    for r in roots:
        r["slices"].sort(key=lambda s: s["start"])
    roots.sort(key=lambda r: r["slices"][0]["start"])
    lines: dict = {}
    meta: list = []
    for r in roots:
        last: dict = {}
        for sp in r["slices"]:
            pid = sp["ev"]["pid"]
            line = _line(lines, last, meta, pid, sp["start"], sp["end"])
            bisect.insort_left(lines[pid][line], (sp["start"], sp["end"]))
            _set_tid(sp, line)
    last = {}
    for sp in sorted(smg, key=lambda s: s["start"]):
        line = _line(lines, last, meta, "smg", sp["start"], sp["end"])
        bisect.insort_left(lines["smg"][line], (sp["start"], sp["end"]))
        sp["ev"]["tid"] = line

    # events and links
    for r in roots:
        for sp in r["slices"]:
            _instants(sp)
    for sp in smg:
        _instants(sp)
    ids = itertools.count()
    for r in roots:
        for sp in r["slices"]:
            sp["flows"] = []
            for linked in sp.get("links", ()):
                lev = linked.get("ev") if isinstance(linked, dict) else None
                if lev is None:
                    continue
                if "correlation" not in lev["args"]:
                    lev["args"]["correlation"] = next(ids)
                fid = lev["args"]["correlation"]
                sp["flows"].append({"ph": "s", "id": fid, "pid": lev["pid"], "tid": lev["tid"], "ts": lev["ts"], "cat": "ac2g", "name": "ac2g"})
                sp["flows"].append({"ph": "f", "id": fid, "pid": sp["ev"]["pid"], "tid": sp["ev"]["tid"], "ts": sp["ev"]["ts"],
                                    "cat": "ac2g", "name": "ac2g", "bp": "e"})

    events = list(procs.values()) + meta
    for r in roots:
        for sp in r["slices"]:
            _gather(sp, events)
    for sp in smg:
        events.append(sp["ev"])
        events.extend(sp["inst"])
    with open(out, "w", encoding="utf-8") as f:
        json.dump(events, f, ensure_ascii=False, indent=4)
    return len(engine) + len(smg)
