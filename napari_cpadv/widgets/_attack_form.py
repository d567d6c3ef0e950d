"""The Attack dock's "attack" group: detector and weights, the attack and its parameters,
and, live beside the budget, its unit in words and what it means on the chosen tile (the
other unit, the PSNR it allows, a warning when it is likely visible or cannot be
reached)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from qtpy.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QWidget,
)

from napari_cpadv.attacks import registry as attack_registry
from napari_cpadv.widgets._view import WARN_STYLE, spin, tooltips

NORMS = ("l2", "linf", "l1", "l0", "none")
BAD_STYLE = "color: #e05050"


class AttackForm(QGroupBox):
    """The attack's parameters (``model``: the dock's ``AttackModel``, for the defaults);
    ``tile()`` is the tile side the budget's meaning is computed for."""

    def __init__(self, model: Any, detector: QWidget, weights: QWidget, tile: Callable[[], int]):
        super().__init__("attack")
        self.tile = tile
        self.attack = QComboBox()
        self.attack.addItem(model.attack)  # the default, until the registry is found
        self.attacks_found = False
        self._then: list[Callable[[], None]] = []
        self._find_attacks()
        self.norm = QComboBox()
        self.norm.addItems(NORMS)
        self.budget = QDoubleSpinBox()
        self.budget.setRange(-1e9, 1e9)  # a wrong sign is refused with a message, not hidden
        self.budget.setDecimals(4)
        self.budget.setValue(model.budget)
        self.unit = QComboBox()
        self.unit.addItems(("total", "per_pixel"))
        self.unit.setCurrentText(model.unit)
        self.unit_label = QLabel()
        self.meaning = QLabel()
        self.meaning.setWordWrap(True)
        self.steps = spin(0, 100_000, model.steps)
        self.step_size = QDoubleSpinBox()
        self.step_size.setRange(0, 1e6)
        self.step_size.setDecimals(5)
        self.step_size.setSpecialValueText("default")
        self.restarts = spin(1, 1000, 1)
        self.seed = spin(0, 2**31 - 1, 0)
        form = QFormLayout(self)
        form.addRow("detector", detector)
        form.addRow("weights", weights)
        form.addRow("attack", self.attack)
        form.addRow("norm", self.norm)
        budget = QHBoxLayout()
        budget.addWidget(self.budget)
        budget.addWidget(self.unit)
        form.addRow("budget", budget)
        form.addRow("", self.unit_label)
        form.addRow("", self.meaning)
        for label, w in (("steps", self.steps), ("step size", self.step_size)):
            form.addRow(label, w)
        for label, w in (("restarts", self.restarts), ("seed", self.seed)):
            form.addRow(label, w)
        self._explain(detector)
        for signal in (
            self.norm.currentTextChanged,
            self.unit.currentTextChanged,
            self.budget.valueChanged,
        ):
            signal.connect(self.show_meaning)

    def _find_attacks(self) -> None:
        """Fill the attack list from the registry. Finding the attacks imports torch (2 s
        on a quiet 2-core machine, 12 s on a busy one): done off the GUI thread unless
        torch is already in, so that the dock opens at once."""
        import sys

        if "torch" in sys.modules:
            self._attacks_found(attack_registry.registry())
            return
        from napari.qt.threading import create_worker

        from napari_cpadv.widgets._work import while_alive

        self._worker = create_worker(attack_registry.registry)
        self._worker.returned.connect(while_alive(self, self._attacks_found))
        self._worker.start()

    def _attacks_found(self, found: dict[str, Any]) -> None:
        current = self.attack.currentText()
        self.attack.clear()
        self.attack.addItems(list(found))
        self.attack.setCurrentText(current)
        self.attack.setToolTip(attack_registry.describe())
        self.attacks_found = True
        for fn in self._then:
            fn()

    def when_found(self, fn: Callable[[], None]) -> None:
        """Call ``fn`` once the attacks are found (torch is in): now, if they are."""
        if self.attacks_found:
            fn()
        else:
            self._then.append(fn)

    def _explain(self, detector: QWidget) -> None:
        tooltips(
            {
                detector: "The detector to fool (with the weights named below)",
                self.attack: "The attack (the list is being found)",
                self.norm: "The norm that bounds δ; none: unconstrained",
                self.budget: "How far δ may go, in the unit shown below (default RMS 0.0282 "
                "per pixel: seed 000's total L2 = 25 over a 512 x 512 tile, about 31 dB, on "
                "any tile)",
                self.unit: "total: the norm over a whole tile (seed 000); per_pixel: RMS "
                "for L2, grey levels of 255 for L∞, mean absolute change for L1, fraction of "
                "pixels for L0 (seed 001)",
                self.meaning: "The same budget in the other unit for the chosen tile, and "
                "the PSNR it allows",
                self.steps: "Iterations of the attack (default 100)",
                self.step_size: "Step of each iteration; default: the attack's own",
                self.restarts: "PGD: random restarts after the first (default 1)",
                self.seed: "Seed of random starts and noise (default 0)",
            }
        )

    def show_meaning(self, *_: Any) -> None:
        """Show the budget's unit in words and what it means on the chosen tile (once
        torch is in: ``attacks.budgets`` imports it)."""
        if not self.attacks_found:
            if self.show_meaning not in self._then:
                self._then.append(self.show_meaning)
            self.meaning.setText("(working out what this budget means…)")
            return
        from napari_cpadv.attacks.budgets import meaning
        from napari_cpadv.attacks.projections import Budget

        try:
            m = meaning(
                Budget(self.norm.currentText(), self.budget.value(), self.unit.currentText()),  # type: ignore[arg-type]
                self.tile(),
            )
        except ValueError as exc:
            self.unit_label.setText("")
            self.meaning.setText(str(exc))
            self.meaning.setStyleSheet(BAD_STYLE)
            return
        self.unit_label.setText(m.label)
        self.meaning.setText(m.summary())
        self.meaning.setStyleSheet(
            BAD_STYLE if m.unreachable else (WARN_STYLE if m.warning else "")
        )

    def sync(self, model: Any) -> None:
        """Copy the parameters into ``model`` (an ``AttackModel``)."""
        model.attack = self.attack.currentText()
        model.norm = self.norm.currentText()
        model.budget = self.budget.value()
        model.unit = self.unit.currentText()
        model.steps = self.steps.value()
        model.step_size = self.step_size.value() or None
        model.restarts = self.restarts.value()
        model.seed = self.seed.value()
