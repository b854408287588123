"""Quadrotor obstacle course: episode layouts, analytic collisions and field-of-view checks.

The world is a box ``|x|, |y| <= 20 m``, ``0 <= z <= 6 m`` with four vertical pillars of
radius 1.5 m (infinitely tall for collisions). Each episode the drone gets a horizontal
velocity command; it starts 10 m behind the box centre along the command direction, and
the first pillar stands on its straight path, so flying the command blindly crashes.

Layout coordinates: ``d = (cos psi, sin psi)`` is the command direction and
``n = (-sin psi, cos psi)`` its horizontal normal; "along" and "lateral" offsets of the
pillars are measured from the start along ``d`` and ``n``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .base import layout_rng

# The walls are not observed (teacher and student know only their altitude), so the box is
# large enough that following the command never reaches them: from the start 10 m behind
# the centre, 20 s at 1.4 m/s ends 18 m ahead of it. With a 20 m half-size, teachers that
# flew slightly faster than commanded left the box in the last seconds (20% of flights).
BOX_HALF_XY = 30.0  # m
BOX_HEIGHT = 6.0  # m
NUM_PILLARS = 4
PILLAR_RADIUS = 1.5  # m
PILLAR_HEIGHT = BOX_HEIGHT  # m, drawn height; collisions treat pillars as infinite
DRONE_RADIUS = 0.15  # m

START_BACK = 10.0  # m behind the box centre along d
START_LATERAL = 1.0  # m, +- along n
START_HEIGHT = (1.5, 2.5)  # m
SPEED = (1.0, 1.4)  # m/s, command speed
FIRST_PILLAR_ALONG = (5.0, 9.0)  # m ahead of the start
FIRST_PILLAR_LATERAL = 1.0  # m, +-: always within PILLAR_RADIUS + DRONE_RADIUS of the path
OTHER_PILLAR_ALONG = (3.0, 22.0)  # m
OTHER_PILLAR_LATERAL = 5.0  # m, +-, widened by 1 m after each LATERAL_WIDEN_AFTER rejections
LATERAL_WIDEN_AFTER = 200
MIN_PILLAR_DISTANCE = 4.5  # m, centre to centre
MIN_START_DISTANCE = 3.5  # m, pillar centre to start
_CANDIDATE_BATCH = 32  # candidate pillar positions drawn per rng call


@dataclass(frozen=True)
class Layout:
    """One episode: the velocity command, the start and the pillar centres."""

    command_yaw: float  # rad
    speed: float  # m/s
    start: np.ndarray  # (3,) m
    start_yaw: float  # rad
    pillars: np.ndarray  # (NUM_PILLARS, 2) m, pillar 0 is the one on the path

    @property
    def command_velocity(self) -> np.ndarray:
        return self.speed * np.array([math.cos(self.command_yaw), math.sin(self.command_yaw), 0.0])


def sample_layout(rng: np.random.Generator,
                  other_along: tuple[float, float] = OTHER_PILLAR_ALONG,
                  other_lateral: float = OTHER_PILLAR_LATERAL) -> Layout:
    """Draw one episode: command, start, and pillars placed by rejection sampling; the
    pillars after the first are drawn ``other_along`` m ahead of the start and up to
    ``other_lateral`` m to either side of the commanded line."""
    psi, speed, start_lat, height, yaw, p1_along, p1_lat = rng.uniform(
        [-math.pi, SPEED[0], -START_LATERAL, START_HEIGHT[0], -math.pi,
         FIRST_PILLAR_ALONG[0], -FIRST_PILLAR_LATERAL],
        [math.pi, SPEED[1], START_LATERAL, START_HEIGHT[1], math.pi,
         FIRST_PILLAR_ALONG[1], FIRST_PILLAR_LATERAL],
    )
    # Rejection sampling in (along, lateral) coordinates: distances are the same as in xy.
    placed = [(float(p1_along), float(start_lat + p1_lat))]
    lateral, rejected = other_lateral, 0
    while len(placed) < NUM_PILLARS:
        candidates = rng.uniform([other_along[0], -lateral],
                                 [other_along[1], lateral], (_CANDIDATE_BATCH, 2))
        for along, lat in candidates.tolist():
            lat += start_lat
            if _pillar_fits(along, lat, start_lat, placed):
                placed.append((along, lat))
                if len(placed) == NUM_PILLARS:
                    break
            else:
                rejected += 1
                if rejected % LATERAL_WIDEN_AFTER == 0:
                    lateral += 1.0
                    break  # draw the next batch with the wider range
    d = np.array([math.cos(psi), math.sin(psi)])
    n = np.array([-d[1], d[0]])
    centre_line = np.array(placed)  # (along from start, lateral from the box centre line)
    origin = -START_BACK * d
    pillars = origin + centre_line[:, :1] * d + centre_line[:, 1:] * n
    start_xy = origin + start_lat * n
    return Layout(float(psi), float(speed), np.array([*start_xy, height]), float(yaw), pillars)


def _pillar_fits(along: float, lat: float, start_lat: float,
                 placed: list[tuple[float, float]]) -> bool:
    if math.hypot(along, lat - start_lat) < MIN_START_DISTANCE:
        return False
    return all(math.hypot(along - a, lat - b) >= MIN_PILLAR_DISTANCE for a, b in placed)


def sample_layouts(
    seed: int, env_ids: np.ndarray, episodes: np.ndarray,
    other_along: tuple[float, float] = OTHER_PILLAR_ALONG,
    other_lateral: float = OTHER_PILLAR_LATERAL,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Layouts of the given (env id, episode index) pairs as arrays: command velocities
    ``(n, 3)``, starts ``(n, 3)``, start yaws ``(n,)`` and pillar centres ``(n, 4, 2)``."""
    layouts = [sample_layout(layout_rng(seed, int(i), int(k)), other_along, other_lateral)
               for i, k in zip(env_ids, episodes, strict=True)]
    n = len(layouts)
    if n == 0:
        return np.zeros((0, 3)), np.zeros((0, 3)), np.zeros(0), np.zeros((0, NUM_PILLARS, 2))
    return (np.stack([lay.command_velocity for lay in layouts]),
            np.stack([lay.start for lay in layouts]),
            np.array([lay.start_yaw for lay in layouts]),
            np.stack([lay.pillars for lay in layouts]))


# ------------------------------------------------------------------------- collisions
def pillar_collision(position: np.ndarray, pillars: np.ndarray) -> np.ndarray:
    """Whether each drone ``(N, 3)`` (or ``(N, 2)``) touches one of its pillars ``(N, P, 2)``."""
    rel = pillars - position[:, None, :2]
    dist2 = np.einsum("npk,npk->np", rel, rel)
    return dist2.min(axis=1) < (PILLAR_RADIUS + DRONE_RADIUS) ** 2


def ground_collision(position: np.ndarray) -> np.ndarray:
    return position[:, 2] < DRONE_RADIUS


def out_of_box(position: np.ndarray) -> np.ndarray:
    return ((np.abs(position[:, :2]) > BOX_HALF_XY).any(axis=1)
            | (position[:, 2] > BOX_HEIGHT))


# ----------------------------------------------------------------------- field of view
def pillars_in_view(eye: np.ndarray, axis: np.ndarray, pillars: np.ndarray,
                    half_fov: float, far: float) -> np.ndarray:
    """``(N, P)``: pillar centres inside the camera's horizontal field of view.

    ``eye`` ``(N, 2+)`` is the camera position and ``axis`` ``(N, 2+)`` its optical axis;
    only their ground-plane parts are used. A pillar is in view when the angle between the
    projected axis and the direction to its centre is below ``half_fov`` and the centre is
    within ``far`` (horizontal distance). A camera looking straight up or down sees none.
    """
    axis_xy = axis[:, :2]
    rel = pillars - eye[:, None, :2]
    dist = np.sqrt(np.einsum("npk,npk->np", rel, rel))
    axis_norm = np.sqrt(np.einsum("nk,nk->n", axis_xy, axis_xy))
    along = np.einsum("npk,nk->np", rel, axis_xy)
    inside = along > math.cos(half_fov) * dist * axis_norm[:, None]
    return inside & (dist <= far) & (axis_norm[:, None] > 1e-6)


def pillar_scan(eye: np.ndarray, axis: np.ndarray, pillars: np.ndarray,
                bearings: np.ndarray, max_range: float) -> np.ndarray:
    """``(N, B)``: how close the nearest pillar is along horizontal rays from the camera,
    ``1 - distance / max_range`` (0 beyond ``max_range`` or when a ray hits nothing).

    The rays leave ``eye`` ``(N, 2+)`` at ``bearings`` ``(B,)`` rad (counter-clockwise,
    i.e. to the left) from the ground-plane direction of the optical ``axis`` ``(N, 2+)``;
    a ray inside a pillar sees it at distance 0. This is what a camera image of the pillar
    course shows (the image-trunk pretraining's target), as a 2D laser scan would."""
    heading = np.arctan2(axis[:, 1], axis[:, 0])[:, None] + np.asarray(bearings)[None, :]
    rays = np.stack([np.cos(heading), np.sin(heading)], axis=-1)  # (N, B, 2)
    rel = pillars[:, None, :, :] - eye[:, None, None, :2]  # (N, 1, P, 2)
    along = np.einsum("nbk,nbpk->nbp", rays, np.broadcast_to(
        rel, (len(rays), rays.shape[1], *rel.shape[2:])))
    off_ray2 = np.einsum("nqpk,nqpk->nqp", rel, rel) - along**2  # squared miss distance
    half_chord = np.sqrt(np.maximum(PILLAR_RADIUS**2 - off_ray2, 0.0))
    near_side = np.maximum(along - half_chord, 0.0)  # 0 when the eye is inside
    hit = (off_ray2 <= PILLAR_RADIUS**2) & (along + half_chord > 0.0)
    distance = np.where(hit, near_side, np.inf).min(axis=-1)
    return np.clip(1.0 - distance / max_range, 0.0, 1.0)
