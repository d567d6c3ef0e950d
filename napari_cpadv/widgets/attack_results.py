"""What the Attack dock does with a finished run: its layers, metrics, saliency, session.

``AttackResults`` is the Attack dock's half that shows results (a mixin of
``AttackWidget``, which owns the controls and starts runs): the run's layers, prepared off
the GUI thread by ``run_layer_data`` and added one per turn of the event loop, the
metrics table, the Plots dock, saliency before and after, and the session file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from qtpy.QtWidgets import QApplication, QFileDialog, QTableWidgetItem, QWidget

from napari_cpadv.experiments.metrics_table import METRIC_COLUMNS, METRIC_LABELS, metrics_csv
from napari_cpadv.widgets._view import notify, show_scale, still_open
from napari_cpadv.widgets._work import in_turns, start
from napari_cpadv.workbench.attack import run_records


class AttackResults:
    """The results half of the Attack dock (see the module docstring)."""

    viewer: Any
    run_layers: dict[str, list[Any]]
    compare: Any
    adding: bool
    worker: Any
    model: Any
    _status: Any
    _run: Any
    _table: Any
    _progress: Any
    _cancel: Any
    state: Any

    @property
    def outcome(self) -> Any:
        """The last run's outcome (the viewer's shared state)."""
        return self.state.outcome

    @property
    def records(self) -> list[Any]:
        """The session records of the layers the runs added (the shared state)."""
        return self.state.records

    def _on_done(self, result: Any, original: Any) -> None:
        """A finished run: its layers (prepared off the GUI thread, added one per turn of
        the event loop), the metrics table, the Plots dock, the status."""
        from napari_cpadv.workbench.session import LayerRecord

        outcome, prepared = result if isinstance(result, tuple) else (result, None)
        if not still_open(self.viewer, original):
            self.state.outcome = outcome
            notify(self._status, f"the slide was closed; the run is saved in {outcome.folder}")
            return
        if prepared is None:
            prepared = run_layer_data(outcome, original.metadata)
        self.add_run_layers(outcome, original, prepared)
        slide = LayerRecord("slide", original.name, original.metadata["cpadv_slide_path"])
        self.show_metrics(outcome.metrics)
        self.state.finished(outcome, slide, prepared["records"])  # the Plots dock listens
        self._status.setText(done_message(outcome))

    def add_run_layers(self, outcome: Any, original: Any, prepared: dict[str, Any]) -> None:
        """The run's layers above the original: the adversarial slide and the attacked
        detector's heatmap after the attack shown, the rest hidden; a re-run of the same
        detector and attack updates its layers in place (napari collects garbage at every
        layer removal); the ground truth's outline on top.

        Each layer goes in at its place in its own turn of the event loop (``in_turns``),
        so the GUI thread stalls for one layer at a time and nothing is moved after."""
        from napari.layers import Image

        key = outcome.key
        old = [la for la in self.run_layers.get(key, []) if la in self.viewer.layers]
        made: list[Any] = []

        def add(k: int, data: Any, kwargs: dict[str, Any], visible: bool) -> Any:
            def step() -> None:
                if k < len(old) and old[k].name == kwargs["name"]:
                    made.append(_update(old[k], data, kwargs, visible))
                    return
                layers = self.viewer.layers
                at = layers.index(original) + 1 + k if original in layers else len(layers)
                layer = Image(data, visible=visible, **kwargs)
                if kwargs.get("metadata", {}).get("cpadv_heatmap"):
                    show_scale(layer)
                layers.insert(min(at, len(layers)), layer)
                made.append(layer)

            return step

        self.adding = True
        steps = [add(k, *layer) for k, layer in enumerate(prepared["layers"])]
        in_turns(steps, then=lambda: self._place(original, made, key))

    def _place(self, original: Any, made: list[Any], key: str) -> None:
        """The run's layers in order above the original (moved only where a re-run's
        updated layers or the user's reordering left them elsewhere), the ground truth on
        top, the pair handed to Compare, the adversarial slide selected."""
        layers = self.viewer.layers
        for stale in self.run_layers.get(key, []):
            if stale in layers and stale not in made:
                layers.remove(stale)
        if original in layers:
            index = layers.index(original) + 1
            for k, layer in enumerate(made):
                if layers.index(layer) != index + k:
                    layers.move(layers.index(layer), index + k)
        truths = [la for la in layers if la.name.startswith("ground truth")]
        if truths and list(layers)[-len(truths) :] != truths:
            for truth in truths:
                layers.move(layers.index(truth), len(layers))
        self.run_layers[key] = made
        detector = key.split(" ")[0]
        maps = {
            la.name.rsplit(" ", 1)[-1]: la for la in made if f": {detector} heatmap " in la.name
        }
        pair = (maps["before"], maps["after"]) if {"before", "after"} <= set(maps) else None
        self.compare.set_pair(original, made[0], pair)
        layers.selection.active = made[0]
        self.adding = False
        self._run.setEnabled(self.worker is None or not self.worker.is_running)

    def show_metrics(self, rows: list[dict[str, Any]]) -> None:
        self._table.setColumnCount(len(rows))
        self._table.setHorizontalHeaderLabels([r["detector"] for r in rows])
        for i, key in enumerate(METRIC_COLUMNS[1:]):
            header = self._table.verticalHeaderItem(i)
            if header is not None:
                header.setToolTip(f"{METRIC_LABELS[key]} (column {key} of metrics.csv)")
        for j, row in enumerate(rows):
            for i, key in enumerate(METRIC_COLUMNS[1:]):
                v = row.get(key)
                text = "" if v is None else (f"{v:.4g}" if isinstance(v, float) else str(v))
                self._table.setItem(i, j, QTableWidgetItem(text))

    def copy_metrics(self) -> str:
        text = metrics_csv(self.outcome.metrics if self.outcome else [])
        clipboard = QApplication.clipboard()
        if clipboard is not None:
            clipboard.setText(text)
        return text

    def _on_save(self) -> None:
        from napari_cpadv.workbench.export import write_metrics

        if self.outcome is None:
            notify(self._status, "run an attack first")
            return
        parent = self if isinstance(self, QWidget) else None
        path, _ = QFileDialog.getSaveFileName(parent, "Metrics", "", "CSV (*.csv);;JSON (*.json)")
        if path:
            write_metrics(self.outcome.metrics, path)

    def _on_saliency(self) -> None:
        work = self._saliency_work()
        if work is None:
            return
        self._status.setText("computing saliency before and after…")
        self.worker = start(
            lambda: work,
            bar=self._progress,
            cancel=self._cancel,
            on_done=self._add_saliency,
            on_error=lambda exc: notify(self._status, str(exc)),
            label="saliency",
        )

    def _saliency_work(self) -> Any:
        """The saliency computation as work (None, with a message, before a run)."""
        from napari_cpadv.experiments.measure import saliency_pair
        from napari_cpadv.models.weights import resolve
        from napari_cpadv.progress import Progress
        from napari_cpadv.slide import open_slide
        from napari_cpadv.slide.delta import open_delta

        if self.outcome is None or not self.compare.ready():
            notify(self._status, "run an attack first")
            return None
        outcome, model = self.outcome, self.model

        def work() -> Any:
            yield Progress(0, 1, {"phase": "saliency"})
            r = outcome.report
            slide = open_slide(r["slide"])
            adversarial = open_delta(outcome.delta)
            same = model.detector == r["detector"]
            det = model.load() if same else resolve(r["detector"], None)
            pair = saliency_pair(det, slide, adversarial, r["level"], outcome.level_box)
            return pair, slide

        return work()

    def _add_saliency(self, result: Any) -> None:
        from napari_cpadv._heatmap_layers import saliency_layer_data

        (before, after), slide = result
        r = self.outcome.report
        limit = float(max(before.max(), after.max()))

        def add(when: str, values: Any) -> Any:
            data, kwargs, _ = saliency_layer_data(
                values,
                level_origin=self.outcome.level_box[:2],
                downsample=float(slide.downsamples[r["level"]]),
                mpp=slide.mpp,
                name=f"{r['detector']} saliency {when}",
                limit=limit,
            )
            return lambda: self.viewer.add_image(data, **kwargs)

        in_turns(
            [add("before", before), add("after", after)],
            then=lambda: self._status.setText(
                f"saliency of {r['detector']} before and after added"
            ),
        )

    def save_session(self, path: str | Path) -> Path:
        """Write the session file of what the runs added (``*.cpadv.json``), with the
        ground truth they were measured against."""
        return self.state.save_session(path, truth_record(self.viewer))


def _update(layer: Any, data: Any, kwargs: dict[str, Any], visible: bool) -> Any:
    """``layer`` (a previous run's) showing ``data`` placed and scaled as ``kwargs`` say."""
    layer.data = data
    for attr in ("scale", "translate", "contrast_limits", "metadata"):
        if attr in kwargs:
            setattr(layer, attr, kwargs[attr])
    layer.visible = visible
    return layer


def truth_record(viewer: Any) -> Any:
    """The session record of the open ground truth layer's file, or ``None``."""
    from napari_cpadv.workbench.session import LayerRecord

    for layer in viewer.layers:
        source = layer.metadata.get("cpadv_source")
        if layer.name.startswith("ground truth") and source and Path(source).is_file():
            return LayerRecord("annotations", layer.name, str(source))
    return None


def done_message(outcome: Any) -> str:
    """What a finished run did, in words: tiles, AUC-PR before and after, success by its
    rule, and the folder."""
    r = outcome.report
    attacked: dict[str, Any] = next((m for m in outcome.metrics if m.get("attacked")), {})
    text = f"done: {r['tiles']} tiles of level {r['level']} attacked"
    before, after = attacked.get("aucpr_before"), attacked.get("aucpr_after")
    if before is not None and after is not None:
        text += f"; {r['detector']} AUC-PR {before:.3f} → {after:.3f}"
    text += f"; tiles fooled {r['success_rate']:.2f}"
    if r.get("success_rule"):
        text += f" ({r['success_rule']})"
    return text + f"; saved in {outcome.folder}"


def with_layer_data(work: Any, slide_metadata: dict[str, Any]) -> Any:
    """``work``, then the layer data of its outcome, prepared off the GUI thread."""
    outcome = yield from work
    return outcome, run_layer_data(outcome, slide_metadata)


def run_layer_data(outcome: Any, slide_metadata: dict[str, Any]) -> dict[str, Any]:
    """The run's layers as ``(data, kwargs, visible)`` and their session records: the
    adversarial slide and the attacked detector's heatmap after the attack visible, the
    perturbation and the other heatmaps hidden; names from the session records."""
    from napari_cpadv._heatmap_layers import heatmap_layer_data, perturbation_layer_data
    from napari_cpadv._reader import read_delta_slide

    r = outcome.report
    records = run_records(outcome)
    mpp = slide_metadata.get("mpp")
    ds = float(slide_metadata["downsamples"][r["level"]])
    layers = []
    data, kwargs, _ = read_delta_slide(str(outcome.delta))[0]
    kwargs["name"] = records[0].name
    kwargs["metadata"]["cpadv_adversarial"] = True
    layers.append((data, kwargs, True))
    data, kwargs, _ = perturbation_layer_data(
        outcome.perturbation(), level_origin=outcome.level_box[:2], downsample=ds, mpp=mpp
    )
    kwargs["name"] = records[1].name
    layers.append((data, kwargs, False))
    maps = [
        (name, when, hm)
        for name, pair in outcome.heatmaps.items()
        for when, hm in zip(("before", "after"), pair, strict=True)
    ]
    for (name, when, hm), rec in zip(maps, records[2:], strict=True):
        data, kwargs, _ = heatmap_layer_data(
            hm.probabilities(),
            cell_level0=hm.cell * hm.downsample,
            origin=hm.origin,
            mpp=mpp,
            name=rec.name,
        )
        layers.append((data, kwargs, name == r["detector"] and when == "after"))
    return {"layers": layers, "records": records}
