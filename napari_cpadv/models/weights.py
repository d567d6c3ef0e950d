"""Detector weights: a safetensors file plus a JSON config beside it. Nothing is unpickled.

``NAME.safetensors`` holds the tensors; ``NAME.json`` holds::

    {"format": "napari-cpadv-weights", "version": 1, "detector": "dae",
     "architecture": {...hyper-parameters...}, "training": {"command": ..., "seeds": ...},
     "metrics": {...held-out scores...}, "sha256": "<of the .safetensors file>"}

Loading checks, in order: the config names our format, the detector is the one asked for,
the file's SHA-256 is the recorded one, and every tensor name and shape matches the
architecture; each failure raises ``FormatError`` naming the file and what differs.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from napari_cpadv.errors import FormatError
from napari_cpadv.models.detector import Detector

if TYPE_CHECKING:
    from torch import nn

FORMAT = "napari-cpadv-weights"
VERSION = 1
SUFFIX = ".safetensors"
PICKLE_SUFFIXES = (".pt", ".pth", ".ckpt", ".bin", ".pkl", ".pickle", ".tar")


def paths(path: str | os.PathLike[str]) -> tuple[Path, Path]:
    """``(tensors, config)`` for weights given as a file, its bare stem, or the name of
    weights shipped in ``sample_data/weights/`` (``dae-he``) when no such file is here."""
    found = _files(path)
    stem = found[0].with_suffix("")
    if stem == Path(stem.name) and not found[0].exists() and not found[1].exists():
        from napari_cpadv.slide.synthetic import SAMPLE_DATA

        named = SAMPLE_DATA / "weights" / stem.name
        if named.with_name(stem.name + SUFFIX).is_file():
            return named.with_name(stem.name + SUFFIX), named.with_name(stem.name + ".json")
    return found


def _files(path: str | os.PathLike[str]) -> tuple[Path, Path]:
    """``(tensors, config)`` at ``path``, a file or its bare stem (where weights are saved:
    never a shipped name)."""
    p = Path(path)
    stem = p.with_suffix("") if p.suffix in (SUFFIX, ".json") else p
    return stem.with_name(stem.name + SUFFIX), stem.with_name(stem.name + ".json")


def _shipped_configs() -> list[Path]:
    from napari_cpadv.slide.synthetic import SAMPLE_DATA

    return sorted((SAMPLE_DATA / "weights").glob("*.json"))


def shipped_names(name: str) -> list[str]:
    """The names of the weights shipped for detector ``name`` (``dae``, ``dae-he``), each
    usable wherever a weights file is asked for."""
    out = []
    for config in _shipped_configs():
        try:
            if json.loads(config.read_text()).get("detector") == name:
                out.append(config.stem)
        except (OSError, ValueError):
            continue  # not weights' config: listed by no one
    return out


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def save(
    detector: Detector,
    path: str | os.PathLike[str],
    *,
    training: dict[str, Any] | None = None,
    metrics: dict[str, Any] | None = None,
) -> Path:
    """Write ``detector``'s tensors and config atomically; returns the ``.safetensors`` path."""
    from safetensors.torch import save as st_save

    from napari_cpadv.files import write_atomic, write_json

    tensors_path, config_path = _files(path)
    state = {k: v.detach().cpu().contiguous() for k, v in detector.state_dict().items()}
    blob = st_save(state, metadata={"format": FORMAT, "detector": detector.name})
    write_atomic(tensors_path, blob)
    config = {
        "format": FORMAT,
        "version": VERSION,
        "detector": detector.name,
        "architecture": detector.config(),
        "training": training or {},
        "metrics": metrics or {},
        "sha256": hashlib.sha256(blob).hexdigest(),
    }
    write_json(config_path, config)
    return tensors_path


def read_config(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The JSON config of a weights file, checked to be ours."""
    tensors_path, config_path = paths(path)
    _refuse_pickle(Path(path))
    if not config_path.is_file():
        if not tensors_path.is_file():  # the file the user named, not its companion
            bare = Path(path) == Path(Path(path).name)  # a name, perhaps a shipped one
            named = f"; shipped: {', '.join(c.stem for c in _shipped_configs())}" if bare else ""
            raise FormatError(path, f"no such weights file (neither {tensors_path.name} nor "
                              f"{config_path.name} is there{named})")  # fmt: skip
        raise FormatError(
            path, f"its JSON config {config_path.name} is missing (napari-cpadv weights are "
            "a .safetensors file and the .json beside it)",
        )  # fmt: skip
    try:
        config = json.loads(config_path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise FormatError(config_path, f"not a readable JSON config ({exc})") from exc
    except RecursionError:
        raise FormatError(config_path, "JSON nested too deep to be a weights config") from None
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        raise FormatError(config_path, f"not a napari-cpadv weights config (no format {FORMAT!r})")
    if config.get("version") != VERSION:
        raise FormatError(
            config_path, f"weights format version {config.get('version')!r}, expected {VERSION}"
        )
    return config


def load(path: str | os.PathLike[str], *, expect: str | None = None, device: Any = None) -> Any:
    """The detector stored at ``path``, in eval mode (on ``device`` if given).

    ``expect`` names the detector the caller wants; weights of another architecture raise
    ``FormatError`` saying which detector and hyper-parameters they hold instead.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load as st_load

    from napari_cpadv.models.detector import make

    config = read_config(path)
    tensors_path, _ = paths(path)
    name = config.get("detector")
    if expect is not None and name != expect:
        raise FormatError(
            tensors_path,
            f"these weights are for the {name!r} detector "
            f"({_describe(config.get('architecture', {}))}), not {expect!r}",
        )
    try:
        blob = tensors_path.read_bytes()
    except OSError as exc:
        raise FormatError(tensors_path, f"cannot be read ({exc.strerror})") from exc
    if hashlib.sha256(blob).hexdigest() != config.get("sha256"):
        raise FormatError(
            tensors_path, "SHA-256 differs from the one in its config (changed or damaged)"
        )
    try:
        state = st_load(blob)
    except (SafetensorError, ValueError) as exc:
        raise FormatError(tensors_path, f"not a safetensors file ({exc})") from exc
    architecture = check_architecture(str(name), config.get("architecture", {}), tensors_path)
    bad = [k for k, t in state.items() if t.is_floating_point() and not bool(t.isfinite().all())]
    if bad:
        raise FormatError(tensors_path, f"weights contain NaN or infinity (in {_few(bad)})")
    try:
        detector = make(str(name), **architecture)
    except (TypeError, ValueError) as exc:
        raise FormatError(tensors_path, f"architecture cannot be built: {exc}") from exc
    check_state(detector, state, tensors_path)
    detector.load_state_dict(state)
    detector.eval()
    if device is not None:
        detector.to(device)
    return detector


_INT = (int,)
_NUM = (int, float)
# Each detector's hyper-parameters and their bounds, checked before anything is built: a
# config of [5000000, 18, 9] channels would allocate gigabytes before any other check.
ARCHITECTURES: dict[str, dict[str, tuple[Any, float, float, int]]] = {
    # key: (types, low, high, list length or 0 for a scalar)
    "dae": {
        "channels": (_INT, 1, 1024, 3),
        "kernels": (_INT, 1, 64, 3),
        "dropout": (_NUM, 0, 0.99, 0),
        "head_channels": (_INT, 1, 1024, 2),
        "head_dropout": (_NUM, 0, 0.99, 0),
    },
    "sparse": {
        "atoms": (_INT, 1, 8192, 0),
        "size": (_INT, 1, 128, 0),
        "stride": (_INT, 1, 128, 0),
        "lam": (_NUM, 0, 1e6, 0),
        "tau": (_NUM, 1e-6, 1e6, 0),
        "iterations": (_INT, 1, 100_000, 0),
        "tol": (_NUM, 0, 0.99, 0),
        "head_channels": (_INT, 1, 1024, 2),
        "head_dropout": (_NUM, 0, 0.99, 0),
    },
    "resnet18": {
        "width": (_INT, 1, 512, 0),
        "classes": (_INT, 2, 1000, 0),
        "patch": (_INT, 32, 4096, 0),
    },
}


def check_architecture(name: str, arch: Any, path: Path) -> dict[str, Any]:
    """The config's architecture, each key known and each value of its type and in its
    bounds; unknown keys are refused, not ignored.

    Raises
    ------
    FormatError
        Naming the file, the key and what is wrong.
    """
    schema = ARCHITECTURES.get(name)
    if schema is None:
        known = ", ".join(ARCHITECTURES)
        raise FormatError(path, f"unknown detector {name!r}; choose one of {known}")
    if not isinstance(arch, dict):
        raise FormatError(path, "its architecture is not an object")
    unknown = sorted(set(arch) - set(schema))
    if unknown:
        raise FormatError(
            path, f"unknown architecture keys {unknown} for {name}; known: {', '.join(schema)}"
        )
    for key, value in arch.items():
        types, low, high, length = schema[key]
        values = value if length else [value]
        if length and (not isinstance(value, list) or len(value) != length):
            raise FormatError(path, f"architecture {key} must be a list of {length}, got {value!r}")
        for v in values:
            if isinstance(v, bool) or not isinstance(v, types) or not low <= v <= high:
                raise FormatError(
                    path, f"architecture {key} = {value!r}: each must be from {low} to {high}"
                )
    return dict(arch)


def check_state(model: nn.Module, state: dict[str, Any], path: Path) -> None:
    """Raise ``FormatError`` listing missing, unexpected and mis-shaped tensors."""
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    extra = sorted(set(state) - set(own))
    shapes = [
        f"{k} {tuple(state[k].shape)} != {tuple(own[k].shape)}"
        for k in sorted(set(own) & set(state))
        if tuple(state[k].shape) != tuple(own[k].shape)
    ]
    problems = []
    if missing:
        problems.append(f"missing {_few(missing)}")
    if extra:
        problems.append(f"unexpected {_few(extra)}")
    if shapes:
        problems.append(f"shapes differ: {_few(shapes)}")
    if problems:
        raise FormatError(path, f"does not match {type(model).__name__}: " + "; ".join(problems))


def load_torchvision(path: str | os.PathLike[str], *, classes: int = 2) -> Any:
    """A ``resnet18`` detector from a torchvision checkpoint, read with ``weights_only=True``.

    The width is read from ``conv1.weight``; when ``fc`` has another number of classes (an
    ImageNet checkpoint has 1000) it is left freshly initialised for fine-tuning.
    """
    import torch

    from napari_cpadv.models.detector import make

    p = Path(path)
    import pickle

    try:
        obj = torch.load(p, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, EOFError, ValueError, pickle.UnpicklingError) as exc:
        raise FormatError(
            p, f"not a torch checkpoint that loads without pickle code ({exc})"
        ) from exc
    if isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise FormatError(p, "not a state dict of tensors")
    state = {k.removeprefix("module."): v for k, v in obj.items()}
    if "conv1.weight" not in state:
        raise FormatError(p, "not a ResNet state dict (no conv1.weight)")
    width = int(state["conv1.weight"].shape[0])
    detector = make("resnet18", width=width, classes=classes)
    if "fc.weight" in state and state["fc.weight"].shape[0] != classes:
        fresh = detector.state_dict()
        state["fc.weight"], state["fc.bias"] = fresh["fc.weight"], fresh["fc.bias"]
    check_state(detector, state, p)
    detector.load_state_dict(state)
    return detector


def _refuse_pickle(path: Path) -> None:
    if path.suffix.lower() in PICKLE_SUFFIXES:
        raise FormatError(
            path,
            "a pickled torch checkpoint; napari-cpadv never unpickles weights. Use a "
            ".safetensors file with its JSON config (a torchvision resnet18 checkpoint can be "
            "converted with napari_cpadv.models.weights.load_torchvision and save)",
        )


def _few(items: list[str], n: int = 4) -> str:
    more = f" and {len(items) - n} more" if len(items) > n else ""
    return ", ".join(items[:n]) + more


def _describe(arch: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in arch.items()) or "no hyper-parameters"


def shipped(name: str) -> Path:
    """The weights shipped in ``sample_data/weights/`` for detector ``name``."""
    from napari_cpadv.slide.synthetic import SAMPLE_DATA

    path = SAMPLE_DATA / "weights" / f"{name}{SUFFIX}"
    if not path.is_file():
        raise FormatError(
            path, f"no shipped weights for {name!r} in this checkout; `make weights` trains them"
        )
    return path


def trained_level(name: str, weights: str | os.PathLike[str] | None = None) -> int | None:
    """The slide level the weights were trained at (``training.level`` of their config),
    or ``None`` when the config does not say or cannot be read."""
    try:
        config = read_config(shipped(name) if weights is None else weights)
    except (OSError, ValueError):
        return None
    level = config.get("training", {}).get("level")
    return level if isinstance(level, int) else None


def architecture_of(name: str, weights: str | os.PathLike[str] | None = None) -> Any:
    """An untrained detector of the architecture ``weights`` (default: the shipped ones)
    hold, their tensors left unread: what planning tiles needs (``multiple``, ``margin``,
    ``cell``) without the cost of loading and checking the weights."""
    from napari_cpadv.models.detector import make

    path = shipped(name) if weights is None else weights
    config = read_config(path)
    tensors_path = paths(path)[0]
    if config.get("detector") != name:
        raise FormatError(
            tensors_path,
            f"these weights are for the {config.get('detector')!r} detector, not {name!r}",
        )
    return make(name, **check_architecture(name, config.get("architecture", {}), tensors_path))


def resolve(name: str, weights: str | os.PathLike[str] | None) -> Any:
    """The detector ``name`` from ``weights``, or from the shipped weights when ``None``."""
    return load(shipped(name) if weights is None else weights, expect=name)
