"""``step[...]`` labels that SGLang wraps around each forward pass → mode and typed fields.

Two grammars, parsed alike (case-insensitive mode word, then ``key=value`` in any order):

* upstream: ``step[EXTEND bs=15 toks=15360]``, ``step[DECODE bs=64]``, ``step[MIXED bs=2 c=1 g=1
  c_sq=5 …]``, ``step[IDLE bs=0]``, ``step[TARGET_VERIFY bs=2]``, ``DRAFT_EXTEND(_V2)``,
  ``PREBUILT``, ``SPLIT_PREFILL``, ``DLLM_EXTEND``;
* design (seed 000): ``step[decode bs=4]``, ``step[prefill bs=2 toks=512]``,
  ``step[mixed bs=8 ext=256 dec=4]``, ``step[idle]``.

Modes (decisions.md): EXTEND, SPLIT_PREFILL, DLLM_EXTEND, prefill → ``prefill``; DECODE →
``decode``; MIXED → ``mixed``; IDLE → ``idle``; TARGET_VERIFY → ``verify``; DRAFT_* → ``draft``;
anything else → ``other``. A MIXED step without ``toks`` gets ``c_sq + g_sq`` (upstream detailed
form) or ``ext + dec`` (design form) when present.

Examples:
    >>> parse_label("step[EXTEND bs=15 toks=15360]").mode
    'prefill'
    >>> parse_label("step[mixed bs=8 ext=256 dec=4]").fields["toks"]
    260
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_LABEL = re.compile(r"^\s*step\[\s*(?P<body>.*?)\s*\]\s*$", re.IGNORECASE | re.DOTALL)
_FIELD = re.compile(r"([A-Za-z_][\w.]*)=([^\s\]]*)")
_MODE_WORD = re.compile(r"^[A-Za-z][\w.]*$")

MODES = ("prefill", "decode", "mixed", "idle", "verify", "draft", "other")
_MODE_OF = {
    "extend": "prefill",
    "split_prefill": "prefill",
    "dllm_extend": "prefill",
    "prefill": "prefill",
    "decode": "decode",
    "mixed": "mixed",
    "idle": "idle",
    "target_verify": "verify",
}


@dataclass(frozen=True)
class StepLabel:
    raw: str
    mode: str
    mode_token: str | None  # the label's mode word as written (None if the label did not parse)
    fields: dict = field(default_factory=dict)
    flags: tuple[str, ...] = ()  # words without "=" after the mode (e.g. smc-head-graph)
    parsed: bool = True


def is_step_label(name: str) -> bool:
    return name.lstrip()[:5].lower() == "step["


def normalize_mode(token: str | None) -> str:
    if not token:
        return "other"
    t = token.lower()
    if t.startswith("forwardmode."):
        t = t.split(".", 1)[1]
    if t in _MODE_OF:
        return _MODE_OF[t]
    if t.startswith("draft_"):
        return "draft"
    return "other"


def _number(text: str):
    try:
        return int(text)
    except ValueError:
        try:
            return float(text)
        except ValueError:
            return text


def parse_label(name: str) -> StepLabel:
    """Parse one label; a label that does not parse gets mode ``other`` and ``parsed=False``."""
    m = _LABEL.match(name)
    if not m:
        return StepLabel(name, "other", None, {}, (), False)
    words = m.group("body").split()
    if not words or "=" in words[0] or not _MODE_WORD.match(words[0]):
        fields = {k: _number(v) for k, v in _FIELD.findall(m.group("body"))}
        return StepLabel(name, "other", None, fields, (), False)
    token = words[0]
    fields: dict = {}
    flags: list[str] = []
    for w in words[1:]:
        if "=" in w:
            k, _, v = w.partition("=")
            fields[k.lower()] = _number(v)
        else:
            flags.append(w)
    mode = normalize_mode(token)
    if mode == "mixed" and "toks" not in fields:
        if isinstance(fields.get("c_sq"), int) and isinstance(fields.get("g_sq"), int):
            fields["toks"] = fields["c_sq"] + fields["g_sq"]
        elif isinstance(fields.get("ext"), int) and isinstance(fields.get("dec"), int):
            fields["toks"] = fields["ext"] + fields["dec"]
    return StepLabel(name, mode, token, fields, tuple(flags), True)
