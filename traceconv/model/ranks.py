"""Parallel ranks in names and sort order: ``PP{p}-DP{d}-TP{t}-EP{e}``, each only when known."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, order=True)
class Ranks:
    pp: int | None = None
    dp: int | None = None
    tp: int | None = None
    ep: int | None = None

    def label(self) -> str:
        """``PP1-DP0-TP0`` (empty when no rank is known)."""
        parts = [f"{k.upper()}{v}" for k, v in (("pp", self.pp), ("dp", self.dp), ("tp", self.tp), ("ep", self.ep)) if v is not None]
        return "-".join(parts)

    def sort_key(self) -> tuple[int, int, int, int]:
        return tuple(-1 if v is None else v for v in (self.pp, self.dp, self.tp, self.ep))  # type: ignore[return-value]

    def sort_index(self) -> int:
        """One integer that orders PP, then DP, then TP, then EP (each < 4096)."""
        out = 0
        for v in self.sort_key():
            out = out * 4096 + (min(v, 4094) + 1)
        return out

    @property
    def known(self) -> bool:
        return any(v is not None for v in (self.pp, self.dp, self.tp, self.ep))


def with_ranks(label: str, ranks: Ranks) -> str:
    """``Scheduler`` + ranks → ``Scheduler-PP1-DP0-TP0``."""
    suffix = ranks.label()
    return f"{label}-{suffix}" if suffix else label


def as_rank(value) -> int | None:
    """An int64 from an int, a numeric string or a float; None for anything else (NaN, ±inf,
    out of range, lists...)."""
    try:
        v = int(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return v if -(1 << 63) <= v < (1 << 63) else None
