"""Pretraining the student's image trunk on labelled quadrotor views (network.pretrain_views):
the pillar-scan geometry, that the labels match what the camera shows, that the trunk
learns to read them, and how training uses it (frozen trunk, resume)."""

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from test_quadrotor_training import TINY

from sitt_training.config import ConfigError, load_config
from sitt_training.envs.quadrotor import QuadrotorVecEnv
from sitt_training.envs.quadrotor_camera import PILLAR_RGBA
from sitt_training.envs.quadrotor_views import SCAN_BEARINGS, SCAN_RANGE, euler_to_matrix
from sitt_training.envs.quadrotor_world import PILLAR_RADIUS, pillar_scan
from sitt_training.image_pretrain import pretrain_trunk, render_views
from sitt_training.networks import ImageStateEncoder
from sitt_training.trainer import PRETRAIN_RECORD, Trainer


def test_pillar_scan_reads_the_distance_to_the_nearest_pillar_surface_per_ray() -> None:
    eye = np.zeros((3, 2))
    axis = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    away = [100.0, 100.0]
    pillars = np.array([[[6.0, 0.0], away],  # 6 m straight ahead
                        [[-6.0, 0.0], away],  # behind
                        [[0.5, 0.5], away]])  # the eye inside it
    bearings = np.array([0.0, math.radians(30.0), math.atan2(3.0, 6.0)])
    scan = pillar_scan(eye, axis, pillars, bearings, 20.0)
    assert scan[0, 0] == pytest.approx(1.0 - (6.0 - PILLAR_RADIUS) / 20.0)
    assert scan[0, 1] == 0.0  # 30 deg to the left passes 3 m from its centre: a miss
    assert np.all(scan[1] == 0.0)
    assert np.all(scan[2] == 1.0)
    # The same pillar moved 3 m to the left is hit by the ray at atan(3/6) to the left,
    # head-on, and missed by the one straight ahead.
    moved = pillar_scan(eye[:1], axis[:1], np.array([[[6.0, 3.0], away]]), bearings, 20.0)
    assert moved[0, 2] == pytest.approx(1.0 - (math.hypot(6.0, 3.0) - PILLAR_RADIUS) / 20.0)
    assert moved[0, 0] == 0.0


def test_euler_to_matrix_is_a_rotation_with_yaw_about_z() -> None:
    rot = euler_to_matrix(np.array([0.1, 0.0]), np.array([-0.2, 0.0]), np.array([0.3, 0.5]))
    assert np.allclose(rot @ rot.transpose(0, 2, 1), np.eye(3), atol=1e-12)
    assert np.allclose(np.linalg.det(rot), 1.0)
    assert np.allclose(rot[1, :, 0], [math.cos(0.5), math.sin(0.5), 0.0])


def test_view_labels_match_the_pillars_in_the_images() -> None:
    env = QuadrotorVecEnv(num_envs=1, seed=0)
    images, scans = render_views(env, 400, seed=3, show_progress=False)
    env.close()
    assert images.shape == (400, 64, 64, 3) and images.dtype == np.uint8
    assert scans.shape == (400, len(SCAN_BEARINGS)) and scans.min() >= 0 and scans.max() <= 1
    assert 0.05 < (scans > 0).mean() < 0.6  # pillars in some views, not in all
    # Pillar-coloured pixels per column, against the scan ray that points at that column:
    # rays that see a pillar within 10 m look at pillar pixels; rays that see nothing
    # within SCAN_RANGE mostly do not (a farther pillar may still be drawn, up to 25 m).
    # Shaded pillar pixels stay orange (red far above blue); ground and sky do not.
    assert PILLAR_RGBA[0] - PILLAR_RGBA[2] > 0.8
    pillar_px = (images[..., 0].astype(int) - images[..., 2] > 80).any(axis=1)
    fx = 32.0 / math.tan(math.radians(40.0))
    columns = np.clip(np.round(31.5 - fx * np.tan(SCAN_BEARINGS)).astype(int), 0, 63)
    seen = pillar_px[:, columns]  # (views, rays)
    near = scans > 1.0 - 10.0 / SCAN_RANGE
    assert near.sum() > 100
    assert seen[near].mean() > 0.9
    assert seen[scans == 0].mean() < 0.35
    # Same seed, same views.
    env = QuadrotorVecEnv(num_envs=1, seed=0)
    again, again_scans = render_views(env, 400, seed=3, show_progress=False)
    env.close()
    assert np.array_equal(again, images) and np.array_equal(again_scans, scans)


def test_the_trunk_learns_to_read_the_scan_on_held_out_views() -> None:
    torch.manual_seed(0)
    env = QuadrotorVecEnv(num_envs=1, seed=0)
    images, scans = render_views(env, 2000, seed=1, show_progress=False)
    env.close()
    encoder = ImageStateEncoder((64, 64, 3), 20, 16, [32], channels=(8, 16, 16, 16))
    for p in encoder.trunk_parameters():
        p.requires_grad_(False)  # frozen for training: pretraining still trains it
    before = [p.detach().clone() for p in encoder.trunk_parameters()]
    head_before = [p.detach().clone() for p in encoder.head.parameters()]
    scores = pretrain_trunk(encoder, images, scans, epochs=4,
                            generator=torch.Generator().manual_seed(0), show_progress=False)
    assert len(scores) == 4
    assert scores[-1] > 0.5, scores  # a random trunk with a linear read-out is near 0
    assert scores[-1] > scores[0]
    trunk, head = encoder.trunk_parameters(), list(encoder.head.parameters())
    assert all(not torch.equal(a, b) for a, b in zip(before, trunk, strict=True))
    assert all(torch.equal(a, b) for a, b in zip(head_before, head, strict=True))
    assert all(not p.requires_grad for p in encoder.trunk_parameters())  # restored


PRETRAIN = [*TINY, "method.name=bc", "network.pretrain_views=600",
            "network.pretrain_epochs=1", "network.freeze_trunk=true"]


def test_training_pretrains_once_and_a_frozen_trunk_stays_fixed(tmp_path: Path) -> None:
    trainer = Trainer(load_config(overrides=[*PRETRAIN, "train.iterations=2"]), tmp_path,
                      show_progress=False)
    initial = [p.detach().clone() for p in trainer.policy.student_encoder.trunk_parameters()]
    trainer.train()
    report = json.loads((tmp_path / PRETRAIN_RECORD).read_text())
    assert report["views"] == 600 and report["target_dim"] == len(SCAN_BEARINGS)
    assert len(report["held_out_r2"]) == 1
    encoder = trainer.policy.student_encoder
    pretrained = [p.detach().clone() for p in encoder.trunk_parameters()]
    head = [p.detach().clone() for p in encoder.head.parameters()]
    assert all(not torch.equal(a, b) for a, b in zip(initial, pretrained, strict=True))
    # Training went on (the student's head learned) with the trunk as pretrained; a resumed
    # run loads the checkpoint and does not pretrain again.
    (tmp_path / PRETRAIN_RECORD).unlink()
    resumed = Trainer(load_config(overrides=[*PRETRAIN, "train.iterations=3"]), tmp_path,
                      show_progress=False)
    assert resumed.resume() is not None
    resumed.train()
    assert not (tmp_path / PRETRAIN_RECORD).exists()
    assert resumed.iteration == 3
    encoder = resumed.policy.student_encoder
    trunk, now = encoder.trunk_parameters(), list(encoder.head.parameters())
    assert all(torch.equal(a, b) for a, b in zip(pretrained, trunk, strict=True))
    assert any(not torch.equal(a, b) for a, b in zip(head, now, strict=True))


def test_pretraining_settings_are_checked(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="network.freeze_trunk: needs network.pretrain_views"):
        load_config(overrides=[*TINY, "network.freeze_trunk=true"])
    with pytest.raises(ConfigError, match="network.pretrain_views: must be >= 0"):
        load_config(overrides=[*TINY, "network.pretrain_views=-1"])
    with pytest.raises(ConfigError, match="network.pretrain_epochs: must be > 0"):
        load_config(overrides=[*TINY, "network.pretrain_epochs=0"])
    no_camera = load_config(overrides=["task.name=color_maze", "method.name=bc",
                                       "network.pretrain_views=600", "train.iterations=1"])
    with pytest.raises(ValueError, match="network.pretrain_views"):
        Trainer(no_camera, tmp_path, show_progress=False).train()
