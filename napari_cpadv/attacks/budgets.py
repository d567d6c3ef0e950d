"""What a budget means on a tile: its unit in words, its value in the other unit, the PSNR
it allows, and whether a perturbation can reach it or would plainly show.

The same number means very different perturbations by norm, unit and tile: seed 000's
L2 = 25 over a 512 x 512 x 3 tile is an RMS change of 0.028 (7 grey levels, PSNR 31 dB);
over a 128 x 128 tile it is 0.113 (PSNR 19 dB, plainly visible); "per pixel" is an RMS
for L2 but grey levels of 255 for L∞. The Attack dock shows ``meaning`` beside the budget
as it is typed, and ``AttackSpec`` refuses a budget no perturbation can reach.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from napari_cpadv.attacks.projections import Budget

# Below this PSNR a perturbation is likely visible. Seed 000's budget (total L2 = 25 on a
# 512 x 512 x 3 tile, which its authors show as imperceptible) allows 31.0 dB; the
# project's own perceptibility figures (issue 16: the same budget on a 128-pixel tile,
# 19 dB and 57/255 at most) are plainly visible.
VISIBLE_PSNR_DB = 30.0


@dataclass(frozen=True)
class Meaning:
    """A budget on a tile, in words a reader checks at a glance.

    ``label``: the unit of the value; ``other``: the same budget in the other unit;
    ``psnr_db`` with ``psnr_kind`` (``"at least"``: the budget bounds the damage, as for
    L2 and L∞; ``"at most"``: for L1, whose RMS is at least its mean absolute change),
    ``None`` where the norm bounds no PSNR; ``unreachable`` and ``warning``: why the budget
    cannot be met, or why it would likely show.
    """

    label: str
    other: str
    psnr_db: float | None = None
    psnr_kind: str = "at least"
    unreachable: str | None = None
    warning: str | None = None

    def summary(self) -> str:
        """One line: the other unit and the PSNR, then what is wrong."""
        parts = [self.other]
        if self.psnr_db is not None and not self.unreachable:
            db = "∞" if math.isinf(self.psnr_db) else f"{self.psnr_db:.1f}"
            parts.append(f"PSNR {self.psnr_kind} {db} dB")
        text = "; ".join(p for p in parts if p)
        problem = self.unreachable or self.warning
        if not problem:
            return text
        problem = problem[0].upper() + problem[1:]
        return f"{text}. {problem}" if text else problem


def _psnr(rms: float) -> float:
    return math.inf if rms <= 0 else -20 * math.log10(rms)


def meaning(budget: Budget, tile: int, channels: int = 3) -> Meaning:
    """What ``budget`` means for one ``tile`` x ``tile`` x ``channels`` example."""
    n, px = tile * tile * channels, tile * tile
    shape = f"a {tile} x {tile} x {channels} tile"
    per = budget.unit == "per_pixel"
    v = budget.value
    if budget.norm == "none":
        return Meaning(
            "unconstrained (the value is not used)",
            "",
            warning="an unconstrained δ is bounded only by [0, 1]: it may be plainly visible",
        )
    if budget.norm == "l0":
        frac = v if per else v / px
        label = "fraction of pixels" if per else f"pixels changed in {shape}"
        other = f"{frac * px:.0f} pixels" if per else f"{frac:.3g} of the pixels"
        bad = None if frac <= 1 else f"{v:g} pixels: {shape} has only {px}"
        return Meaning(label, other, unreachable=bad)
    if budget.norm == "linf":
        eps = v / 255 if per else v
        label = "grey levels of 255" if per else "largest change, in [0, 1]"
        other = f"{eps:.4g} in [0, 1]" if per else f"{eps * 255:.3g} grey levels of 255"
        bad = None if eps <= 1 else "an L∞ change above 255 grey levels cannot be reached"
        return _visible(Meaning(label, other, _psnr(eps), unreachable=bad))
    if budget.norm == "l1":
        mad = v if per else v / n
        label = "mean absolute change, in [0, 1]" if per else f"total L1 over {shape}"
        other = f"total L1 {mad * n:.4g} over {shape}" if per else f"mean absolute change {mad:.3g}"
        bad = None if mad <= 1 else "a mean absolute change above 1 cannot be reached"
        return _visible(Meaning(label, other, _psnr(mad), "at most", unreachable=bad))
    rms = v if per else v / math.sqrt(n)
    label = "RMS change, in [0, 1]" if per else f"total L2 over {shape}"
    other = (
        f"total L2 {rms * math.sqrt(n):.4g} over {shape}"
        if per
        else f"RMS {rms:.3g} ({rms * 255:.3g} grey levels)"
    )
    bad = None if rms <= 1 else "an RMS change above 1 cannot be reached: pixels lie in [0, 1]"
    return _visible(Meaning(label, other, _psnr(rms), unreachable=bad))


def _visible(m: Meaning) -> Meaning:
    if m.unreachable or m.psnr_db is None or m.psnr_db >= VISIBLE_PSNR_DB:
        return m
    sure = "plainly visible" if m.psnr_kind == "at most" else "likely visible"
    return Meaning(
        m.label,
        m.other,
        m.psnr_db,
        m.psnr_kind,
        warning=f"below {VISIBLE_PSNR_DB:.0f} dB: {sure} (seed 000's budget, L2 = 25 "
        "on a 512 x 512 tile, allows 31 dB)",
    )
