"""Random camera views of the pillar course, labelled with what they show, for pretraining
the student's image trunk (``sitt_training.image_pretrain``).

The paper's student reads images through a frozen, pretrained vision encoder (DINOv2).
Nothing pretrained can be downloaded here, and a CNN trained only by the alignment losses
did not learn to read pillars from its images (docs/quadrotor_tuning.md, session 13), though
the same CNN learns the scan below from a few thousand labelled views. So the trunk is
pretrained on views like these: drones placed around the commanded corridor of freshly drawn
layouts with random headings and small tilts, each image labelled with the pillar scan
(``quadrotor_world.pillar_scan``) across the camera's horizontal field of view.
"""

from __future__ import annotations

import math

import numpy as np

from .quadrotor_camera import MOUNT_TRANSLATION, horizontal_fov_deg
from .quadrotor_world import (
    DRONE_RADIUS,
    OTHER_PILLAR_ALONG,
    OTHER_PILLAR_LATERAL,
    PILLAR_RADIUS,
    pillar_scan,
    sample_layout,
)

# Rays of the scan: 16 across the horizontal field of view (+-40 deg), 2 deg inside its
# edges so that a ray's pillar is in the image. Left (positive bearing) first.
SCAN_BEARINGS = np.radians(np.linspace(1.0, -1.0, 16) * (horizontal_fov_deg() / 2.0 - 2.0))
SCAN_RANGE = 20.0  # m, the scan reads 0 beyond this
# Where the views are taken, around the commanded corridor (layout coordinates: m ahead of
# the start along the command, m to either side of the commanded line) and at what height.
VIEW_ALONG = (-2.0, 28.0)
VIEW_LATERAL = 8.0
VIEW_HEIGHT = (0.8, 3.5)
VIEW_TILT_STD = 0.15  # rad, roll and pitch: the attitudes of agile flight
VIEWS_PER_LAYOUT = 40


def euler_to_matrix(roll: np.ndarray, pitch: np.ndarray, yaw: np.ndarray) -> np.ndarray:
    """Body->world rotations ``(N, 3, 3)`` of Z-Y-X (yaw, pitch, roll) Euler angles."""
    cr, sr, cp, sp = np.cos(roll), np.sin(roll), np.cos(pitch), np.sin(pitch)
    cy, sy = np.cos(yaw), np.sin(yaw)
    return np.stack([
        np.stack([cy * cp, cy * sp * sr - sy * cr, cy * sp * cr + sy * sr], axis=-1),
        np.stack([sy * cp, sy * sp * sr + cy * cr, sy * sp * cr - cy * sr], axis=-1),
        np.stack([-sp, cp * sr, cp * cr], axis=-1),
    ], axis=-2)


def sample_views(rng: np.random.Generator, count: int,
                 other_along: tuple[float, float] = OTHER_PILLAR_ALONG,
                 other_lateral: float = OTHER_PILLAR_LATERAL
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``count`` drone poses among freshly drawn layouts (``VIEWS_PER_LAYOUT`` each):
    positions ``(N, 3)``, body->world rotations ``(N, 3, 3)`` and pillars ``(N, P, 2)``.
    No drone is inside or touching a pillar."""
    layouts = [sample_layout(rng, other_along, other_lateral)
               for _ in range(math.ceil(count / VIEWS_PER_LAYOUT))]
    which = np.arange(count) // VIEWS_PER_LAYOUT
    pillars = np.stack([layouts[i].pillars for i in which])
    yaw = np.array([layouts[i].command_yaw for i in which])
    forward = np.stack([np.cos(yaw), np.sin(yaw)], axis=1)
    left = np.stack([-forward[:, 1], forward[:, 0]], axis=1)
    start = np.stack([layouts[i].start[:2] for i in which])
    positions = np.zeros((count, 3))
    todo = np.arange(count)
    while len(todo):  # redraw the drones that landed in a pillar
        along = rng.uniform(*VIEW_ALONG, len(todo))[:, None]
        lateral = rng.uniform(-VIEW_LATERAL, VIEW_LATERAL, len(todo))[:, None]
        positions[todo, :2] = start[todo] + along * forward[todo] + lateral * left[todo]
        positions[todo, 2] = rng.uniform(*VIEW_HEIGHT, len(todo))
        gap = np.linalg.norm(pillars[todo] - positions[todo, None, :2], axis=-1).min(axis=1)
        todo = todo[gap < PILLAR_RADIUS + 2.0 * DRONE_RADIUS]
    rotations = euler_to_matrix(rng.normal(0.0, VIEW_TILT_STD, count),
                                rng.normal(0.0, VIEW_TILT_STD, count),
                                rng.uniform(-math.pi, math.pi, count))
    return positions, rotations, pillars


def view_scans(positions: np.ndarray, rotations: np.ndarray, pillars: np.ndarray
               ) -> np.ndarray:
    """The pretraining target of each view: its pillar scan ``(N, len(SCAN_BEARINGS))``."""
    eyes = positions + rotations @ MOUNT_TRANSLATION
    return pillar_scan(eyes, rotations[:, :, 0], pillars, SCAN_BEARINGS,
                       SCAN_RANGE).astype(np.float32)
