"""Seed 001 §2.1: ResNet-18 for 224 x 224 patches, two classes, in plain torch.

Parameter and buffer names are torchvision's (``conv1``, ``bn1``, ``layer1.0.conv1``, ...,
``layer2.0.downsample.0``, ``fc``), so a torchvision ``resnet18`` state dict loads into
``ResNet18(width=64, classes=1000)`` unchanged, and into the 2-way model with everything
but ``fc`` (see ``weights.load_torchvision``). ``width`` scales every stage (64 is the
original); the ImageNet mean/std normalisation is inside the model, so inputs are [0, 1].
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import nn

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
PATCH = 224


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, cin: int, cout: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample: nn.Module | None = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(
                nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class ResNet18(nn.Module):
    """``(N, 3, H, W)`` in [0, 1] -> class logits ``(N, classes)``; class 1 is tumour.

    Parameters
    ----------
    width
        Channels of the first stage (the stages have ``w, 2w, 4w, 8w``); 64 is torchvision's.
    classes
        Output classes (2 for the seed's tumour / normal patches).
    """

    mean: torch.Tensor
    std: torch.Tensor

    def __init__(self, *, width: int = 64, classes: int = 2) -> None:
        super().__init__()
        self.width, self.classes = width, classes
        self.conv1 = nn.Conv2d(3, width, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        stages = []
        cin = width
        for i, mult in enumerate((1, 2, 4, 8)):
            cout = width * mult
            stride = 1 if i == 0 else 2
            stages.append(nn.Sequential(BasicBlock(cin, cout, stride), BasicBlock(cout, cout)))
            cin = cout
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(cin, classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The penultimate features ``(N, 8·width)`` (for UMAP and saliency)."""
        # Contiguous NCHW: torch 2.13's CPU convolution backward crashes the process (double
        # free) on the channels-last images `device.to_tensor` makes when the first stage is
        # 8 wide (seed 001's quick reproduction). The cell detectors keep channels-last,
        # where the DAE runs 1.8 times faster on this CPU.
        x = (x.contiguous() - self.mean) / self.std
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return torch.flatten(self.avgpool(x), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x))


def tumour_logit(logits: torch.Tensor) -> torch.Tensor:
    """One tumour logit per patch from 2-way logits: ``logit[1] - logit[0]``.

    ``sigmoid`` of it is the softmax probability of class 1.
    """
    if logits.ndim != 2 or logits.shape[1] != 2:
        raise ValueError(f"expected (N, 2) class logits, got {tuple(logits.shape)}")
    return logits[:, 1] - logits[:, 0]


class ResNetDetector(ResNet18):
    """Seed 001's patch classifier as a detector: ``(N, 3, 224, 224)`` -> ``(N, 2)`` logits.

    Over a slide it scores one ``patch`` x ``patch`` window per heatmap cell.
    """

    name: ClassVar[str] = "resnet18"
    output: ClassVar[str] = "classes"
    gradient_free: ClassVar[bool] = False
    latent: ClassVar[bool] = False
    natural_attack: ClassVar[str] = "pgd"  # seed 001 §2.2
    multiple = 1
    margin = 0

    def __init__(self, **hyper: Any) -> None:
        self.hyper: dict[str, Any] = {
            "width": int(hyper.get("width", 64)),
            "classes": int(hyper.get("classes", 2)),
            "patch": int(hyper.get("patch", PATCH)),
        }
        super().__init__(width=self.hyper["width"], classes=self.hyper["classes"])
        self.cell = self.hyper["patch"]

    def config(self) -> dict[str, Any]:
        return dict(self.hyper)

    def tumour_logits(self, x: torch.Tensor) -> torch.Tensor:
        """One tumour logit per patch, ``(N,)``."""
        return tumour_logit(self(x))
