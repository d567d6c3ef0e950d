"""Every registered attack keeps the ``Attack`` contract, checked on each registry entry:
input not mutated, δ within the budget and the [0, 1] box, a monotone progress bar, at
most one step's work between two progress reports (so a cancel lands within a step), the
device honoured, one result type; and adding an attack is adding one module."""

from __future__ import annotations

import sys
import textwrap

import pytest
import torch

from napari_cpadv.attacks import registry as attack_registry
from napari_cpadv.attacks.base import AttackSpec, Scored
from napari_cpadv.attacks.objectives import objective_for
from napari_cpadv.attacks.projections import Budget
from napari_cpadv.models.detector import make
from napari_cpadv.progress import Progress

from ..conftest import TINY

SIDE = 32
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def _detector(attack):
    torch.manual_seed(0)
    name = "sparse" if getattr(attack, "needs_latent", False) else "dae"
    return make(name, **TINY[name]).eval()


def _budget(attack) -> Budget:
    for norm, value in (("l2", 1.5), ("linf", 4 / 255), ("l1", 20.0)):
        if norm in attack.norms:
            return Budget(norm, value)  # type: ignore[arg-type]
    raise AssertionError(f"{attack.name} takes none of l2, linf, l1")


class Counting(torch.nn.Module):
    """The detector, counting its forward passes."""

    def __init__(self, inner):
        super().__init__()
        self.inner, self.calls = inner, 0
        for key in ("name", "output", "cell", "multiple", "margin", "gradient_free", "latent"):
            setattr(self, key, getattr(inner, key))

    def forward(self, x):
        self.calls += 1
        return self.inner(x)

    def __getattr__(self, key):
        try:
            return super().__getattr__(key)
        except AttributeError:
            return getattr(self.inner, key)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", attack_registry.names())
def test_every_attack_keeps_the_contract(name, device):
    attack = attack_registry.registry()[name]
    assert type(attack).__module__ == f"napari_cpadv.attacks.{name}"  # one module each
    detector = Counting(_detector(attack)).to(device)
    x = torch.rand(3, 3, SIDE, SIDE, generator=torch.Generator().manual_seed(1)).to(device)
    before = x.clone()
    spec = AttackSpec(name, _budget(attack), level=0, steps=3, tile=SIDE, epochs=2)
    objective = objective_for(detector, x)
    work = attack.craft(detector, x, objective, spec, batch=2)
    fractions, between = [], []
    detector.calls = 0
    try:
        while True:
            item = next(work)
            if isinstance(item, Progress):
                fractions.append(item.fraction)
                between.append(detector.calls)
                detector.calls = 0
    except StopIteration as stop:
        result = stop.value

    assert torch.equal(x, before), "the input was mutated"
    assert isinstance(result, Scored)
    assert result.delta.shape == x.shape and result.success.shape == (len(x),)
    assert result.delta.device == x.device and result.logits.device == x.device
    adv = x + result.delta
    assert adv.min() >= 0 and adv.max() <= 1
    assert torch.allclose(adv * 255, (adv * 255).round(), atol=1e-3), "not 8-bit"
    key = spec.budget.norm_key()
    limit = spec.budget.value * (1 + 1e-3) + 1e-6
    assert max(result.norms_float[key]) <= limit, "the float δ is over its budget"
    assert fractions and fractions == sorted(fractions) and fractions[0] >= 0
    assert fractions[-1] == pytest.approx(1.0)
    assert len(fractions) >= max(spec.iterations, 1)
    # between two reports at most one step's passes (a step: forward + success check)
    assert max(between) <= 3, f"{max(between)} forward passes without a progress report"


@pytest.mark.parametrize("name", attack_registry.names())
def test_every_attack_refuses_what_it_cannot_run(name):
    attack = attack_registry.registry()[name]
    dae = make("dae").eval()
    sparse = make("sparse", **TINY["sparse"]).eval()
    spec = AttackSpec(name, _budget(attack), level=0, steps=1, tile=SIDE)
    wrong = dae if getattr(attack, "needs_latent", False) else sparse if attack.gradient else None
    if wrong is not None:
        with pytest.raises(ValueError, match="sparse code|no gradient"):
            attack.check(wrong, spec)
    others = [n for n in ("l0", "l1", "l2", "linf", "none") if n not in attack.norms]
    if not others:  # it takes every norm (PGD)
        return
    other = others[0]
    bad = AttackSpec(name, Budget(other, 0.5, "per_pixel" if other == "l0" else "total"), 0,
                     tile=SIDE)  # fmt: skip
    with pytest.raises(ValueError, match=f"not {other}"):
        attack.check(sparse if getattr(attack, "needs_latent", False) else dae, bad)


def test_adding_an_attack_is_adding_one_module(tmp_path, monkeypatch):
    """A new module in the attacks package is an attack everywhere: the registry, the
    command line's choices, ``AttackSpec`` and a run, with nothing else edited."""
    import napari_cpadv.attacks as package
    from napari_cpadv.cli import build_parser
    from napari_cpadv.progress import drive

    (tmp_path / "zero.py").write_text(
        textwrap.dedent(
            """
            import torch
            from napari_cpadv.attacks.base import TileAttack
            from napari_cpadv.progress import Progress

            class Zero(TileAttack):
                name = "zero"
                summary = "no perturbation at all (a test's attack)"
                gradient = False

                def attack_batch(self, job):
                    yield Progress(1, 1)
                    return torch.zeros_like(job.x)

            ATTACK = Zero()
            """
        )
    )
    monkeypatch.setattr(package, "__path__", [*package.__path__, str(tmp_path)])
    attack_registry.registry.cache_clear()
    try:
        assert "zero" in attack_registry.names()
        sub = next(a for a in build_parser()._actions if a.dest == "command")
        at = next(a for a in sub.choices["attack"]._actions if a.dest == "attack")
        assert "zero" in at.choices
        spec = AttackSpec("zero", Budget("l2", 1.0), level=0, tile=SIDE)
        det = make("dae").eval()
        x = torch.randint(0, 256, (1, 3, SIDE, SIDE)).float() / 255  # an 8-bit image
        res = drive(spec.runner.craft(det, x, objective_for(det, x), spec))
        assert res.delta.abs().max() == 0
    finally:
        sys.modules.pop("napari_cpadv.attacks.zero", None)
        monkeypatch.undo()
        attack_registry.registry.cache_clear()
    assert "zero" not in attack_registry.names()
