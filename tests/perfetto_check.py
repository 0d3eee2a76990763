"""Decode a Perfetto trace with Perfetto's own `perfetto_trace_pb2` and replay it like
trace_processor does (sort by timestamp keeping file order on ties, a slice stack per track),
checking the invariants a viewer relies on. Returns plain Python records for assertions."""

from __future__ import annotations

from dataclasses import dataclass, field

from perfetto.protos.perfetto.trace import perfetto_trace_pb2 as pb


@dataclass
class Slice:
    track: int
    name: str
    category: str
    start: int
    end: int | None
    depth: int
    parent: "Slice | None"
    args: dict = field(default_factory=dict)
    flows_out: list[int] = field(default_factory=list)
    flows_in: list[int] = field(default_factory=list)
    instant: bool = False


@dataclass
class Decoded:
    tracks: dict[int, pb.TrackDescriptor]
    slices: list[Slice]
    counters: list[tuple[int, float, int]]
    thread_names: list[str]
    process_names: list[str]

    def track_name(self, uuid: int) -> str:
        d = self.tracks[uuid]
        if d.HasField("thread"):
            return d.thread.thread_name
        if d.HasField("process"):
            return d.process.process_name
        return d.name

    def thread_of(self, s: Slice) -> str:
        """The thread (or custom track) a slice is on, looking through lanes."""
        d = self.tracks[s.track]
        while not d.HasField("thread") and d.parent_uuid in self.tracks and not self.tracks[d.parent_uuid].HasField("process"):
            d = self.tracks[d.parent_uuid]
        return d.thread.thread_name if d.HasField("thread") else d.name

    def flows(self) -> list[tuple[Slice, Slice]]:
        """(from, to) pairs, like trace_processor's flow table."""
        started: dict[int, Slice] = {}
        out = []
        for s in sorted(self.slices, key=lambda s: s.start):
            for f in s.flows_out:
                if f in started:
                    out.append((started[f], s))
                started[f] = s
            for f in s.flows_in:
                if f in started:
                    out.append((started.pop(f), s))
        return out


def _value(a: pb.DebugAnnotation, strings: dict[int, str]):
    kind = a.WhichOneof("value")
    if kind == "string_value_iid":
        return strings[a.string_value_iid]
    if kind == "nested_value":
        return None
    if kind == "legacy_json_value":
        import json

        return json.loads(a.legacy_json_value)
    if kind is None:
        if a.array_values:
            return [_value(x, strings) for x in a.array_values]
        if a.dict_entries:
            return {e.name: _value(e, strings) for e in a.dict_entries}
        return None
    return getattr(a, kind)


def decode(data: bytes) -> Decoded:
    trace = pb.Trace()
    trace.ParseFromString(data)
    names: dict[int, str] = {}
    cats: dict[int, str] = {}
    keys: dict[int, str] = {}
    strings: dict[int, str] = {}
    tracks: dict[int, pb.TrackDescriptor] = {}
    events = []
    seq_cleared = False
    for i, p in enumerate(trace.packet):
        assert p.trusted_packet_sequence_id, "packet without a sequence id"
        if p.sequence_flags & 1:
            seq_cleared = True
        if p.HasField("interned_data"):
            assert seq_cleared, "interned data before the sequence was cleared"
            d = p.interned_data
            names.update({e.iid: e.name for e in d.event_names})
            cats.update({e.iid: e.name for e in d.event_categories})
            keys.update({e.iid: e.name for e in d.debug_annotation_names})
            strings.update({e.iid: e.str.decode() for e in d.debug_annotation_string_values})
        if p.HasField("track_descriptor"):
            assert p.track_descriptor.uuid not in tracks, "duplicate track uuid"
            tracks[p.track_descriptor.uuid] = p.track_descriptor
        if p.HasField("track_event"):
            te = p.track_event
            assert te.track_uuid in tracks or te.type == 0, "event on an undeclared track"
            if te.type in (1, 3):
                assert te.name_iid in names, "undefined name iid"
                for c in te.category_iids:
                    assert c in cats, "undefined category iid"
                for a in te.debug_annotations:
                    assert a.name_iid in keys, "undefined annotation name iid"
                    if a.HasField("string_value_iid"):
                        assert a.string_value_iid in strings, "undefined string iid"
            events.append((p.timestamp, i, te))
    for uuid, d in tracks.items():
        if d.parent_uuid:
            assert d.parent_uuid in tracks, "track parent undeclared"
    events.sort(key=lambda e: (e[0], e[1]))
    stacks: dict[int, list[Slice]] = {}
    slices: list[Slice] = []
    counters = []
    for ts, _, te in events:
        st = stacks.setdefault(te.track_uuid, [])
        while st and st[-1].instant:
            st.pop()
        if te.type == 1 or te.type == 3:
            s = Slice(
                te.track_uuid,
                names[te.name_iid],
                ",".join(cats[c] for c in te.category_iids),
                ts,
                ts if te.type == 3 else None,
                len(st),
                st[-1] if st else None,
                {keys[a.name_iid]: _value(a, strings) for a in te.debug_annotations},
                list(te.flow_ids),
                list(te.terminating_flow_ids),
                te.type == 3,
            )
            slices.append(s)
            st.append(s)
        elif te.type == 2:
            assert st, f"END with no open slice on track {te.track_uuid} at {ts}"
            s = st.pop()
            s.end = ts
        elif te.type == 4:
            counters.append((te.track_uuid, te.double_counter_value, ts))
    for uuid, st in stacks.items():
        assert all(s.instant for s in st), f"slices left open on track {uuid}"
    thread_names = [d.thread.thread_name for d in tracks.values() if d.HasField("thread")]
    process_names = [d.process.process_name for d in tracks.values() if d.HasField("process")]
    return Decoded(tracks, slices, counters, thread_names, process_names)
