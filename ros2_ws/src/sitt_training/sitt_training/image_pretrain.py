"""Pretraining the student's image trunk before training (``network.pretrain_views``).

The paper's student sees through a frozen, pretrained vision encoder (DINOv2); here the
student's small CNN starts from random weights, and the alignment losses alone did not
teach it to read the pillars from its images (docs/quadrotor_tuning.md, session 13). So
a task that can label its own camera views (``env.pretraining_views(count, rng)``:
images and a target vector of what they show, e.g. the quadrotor's pillar scan) lets the
trunk (``ImageStateEncoder.trunk_parameters``) learn to regress that target first, with a
temporary linear read-out that is thrown away afterwards. Every method of a task gets the
same pretraining, so budgets stay equal; ``network.freeze_trunk`` then keeps the trunk
fixed, as the paper keeps DINOv2.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from .networks import ImageStateEncoder

# The views' random stream: apart from every training and evaluation layout stream.
VIEW_STREAM = 0x1A6E5
RENDER_CHUNK = 1024  # views rendered per call (progress bar steps)
HELD_OUT_FRACTION = 0.1  # of the views, for the R^2 reported per epoch
BATCH_SIZE = 256
LEARNING_RATE = 1e-3


@dataclass
class PretrainReport:
    """What pretraining did: written to the run directory as ``pretrain.json``."""

    views: int
    epochs: int
    target_dim: int
    held_out_r2: list[float]  # per epoch, on HELD_OUT_FRACTION of the views
    render_s: float
    train_s: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def render_views(env: Any, count: int, seed: int, show_progress: bool = True
                 ) -> tuple[np.ndarray, np.ndarray]:
    """``count`` labelled views from the task ``env`` (``pretraining_views``), drawn from
    the training seed's own stream."""
    make_views = getattr(env, "pretraining_views", None)
    if make_views is None:
        raise ValueError("network.pretrain_views: this task has no labelled camera views to "
                         "pretrain on (its environment lacks pretraining_views)")
    rng = np.random.default_rng([seed, VIEW_STREAM])
    images, targets = [], []
    with tqdm(total=count, desc="rendering pretraining views", unit="img",
              disable=not show_progress, mininterval=2.0) as bar:
        for lo in range(0, count, RENDER_CHUNK):
            n = min(RENDER_CHUNK, count - lo)
            chunk_images, chunk_targets = make_views(n, rng)
            images.append(chunk_images)
            targets.append(np.asarray(chunk_targets, dtype=np.float32))
            bar.update(n)
    return np.concatenate(images), np.concatenate(targets)


def pretrain_trunk(encoder: ImageStateEncoder, images: np.ndarray, targets: np.ndarray,
                   epochs: int, generator: torch.Generator, show_progress: bool = True
                   ) -> list[float]:
    """Train ``encoder``'s trunk with a linear read-out to regress ``targets`` (N, K) from
    ``images`` (N, H, W, 3) uint8 by mean squared error; the held-out R^2 after each epoch.
    The trunk is trainable during this even if it is frozen for training afterwards."""
    count = len(images)
    held_out = max(1, int(round(HELD_OUT_FRACTION * count)))
    if count - held_out < BATCH_SIZE:
        raise ValueError(f"network.pretrain_views: {count} views leave fewer than "
                         f"{BATCH_SIZE} to train on; use at least "
                         f"{int(np.ceil(BATCH_SIZE / (1 - HELD_OUT_FRACTION))) + 1}")
    order = torch.randperm(count, generator=generator)
    test_rows, train_rows = order[:held_out], order[held_out:]
    x, y = torch.from_numpy(images), torch.from_numpy(targets)
    readout = nn.Linear(encoder.image_head[0].out_features, y.shape[1])
    trunk = encoder.trunk_parameters()
    was_trainable = [p.requires_grad for p in trunk]
    for p in trunk:
        p.requires_grad_(True)
    optimizer = torch.optim.Adam([*trunk, *readout.parameters()], lr=LEARNING_RATE)
    # R^2 against predicting the training mean for every view.
    baseline = ((y[test_rows] - y[train_rows].mean(dim=0)) ** 2).mean().item()
    batches = len(train_rows) // BATCH_SIZE
    scores = []
    try:
        with tqdm(total=epochs * batches, desc="pretraining the image trunk", unit="batch",
                  disable=not show_progress, mininterval=2.0) as bar:
            for _ in range(epochs):
                shuffled = train_rows[torch.randperm(len(train_rows), generator=generator)]
                for lo in range(0, batches * BATCH_SIZE, BATCH_SIZE):
                    rows = shuffled[lo:lo + BATCH_SIZE]
                    loss = ((readout(encoder.image_features(x[rows])) - y[rows]) ** 2).mean()
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    optimizer.step()
                    bar.update()
                with torch.no_grad():
                    error = sum(((readout(encoder.image_features(x[rows])) - y[rows]) ** 2)
                                .sum().item() for rows in test_rows.split(1024))
                scores.append(1.0 - error / (held_out * y.shape[1]) / max(baseline, 1e-12))
                bar.set_postfix(held_out_r2=f"{scores[-1]:.3f}", refresh=False)
    finally:
        for p, trainable in zip(trunk, was_trainable, strict=True):
            p.requires_grad_(trainable)
            p.grad = None
    return scores


def pretrain_student_images(policy: Any, env: Any, views: int, epochs: int, seed: int,
                            show_progress: bool = True) -> PretrainReport:
    """Render ``views`` labelled views of ``env``'s task and pretrain ``policy``'s student
    image trunk on them (module docstring)."""
    encoder = policy.student_encoder
    if not isinstance(encoder, ImageStateEncoder):
        raise ValueError("network.pretrain_views: the task's student has no camera image")
    start = time.perf_counter()
    images, targets = render_views(env, views, seed, show_progress)
    rendered = time.perf_counter()
    generator = torch.Generator().manual_seed(seed)
    scores = pretrain_trunk(encoder, images, targets, epochs, generator, show_progress)
    return PretrainReport(views=views, epochs=epochs, target_dim=int(targets.shape[1]),
                          held_out_r2=scores, render_s=rendered - start,
                          train_s=time.perf_counter() - rendered)
