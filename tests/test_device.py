"""Images become tensors in the ordinary layout."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from napari_cpadv.device import to_tensor
from napari_cpadv.models.detector import make


def test_to_tensor_is_nchw_in_unit_range():
    images = np.random.default_rng(0).integers(0, 256, (2, 16, 24, 3), dtype=np.uint8)
    x = to_tensor(images)
    assert x.shape == (2, 3, 16, 24) and x.dtype == torch.float32
    assert torch.equal(x[1, 2], torch.from_numpy(images[1, ..., 2]).float() / 255)


def test_an_eight_wide_resnet_trains_on_patches():
    """torch 2.13's CPU convolution backward crashed the process (double free) on the
    channels-last tensors `to_tensor` makes, for this width: the model takes them
    contiguous."""
    torch.manual_seed(0)
    model = make("resnet18", width=8).train()
    images = np.random.default_rng(1).integers(0, 256, (16, 224, 224, 3), dtype=np.uint8)
    loss = F.cross_entropy(model(to_tensor(images)), torch.zeros(16, dtype=torch.long))
    loss.backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())
