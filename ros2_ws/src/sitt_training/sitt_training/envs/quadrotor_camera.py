"""Forward-facing drone camera rendered with pybullet's TinyRenderer (CPU, no GPU needed).

One renderer (a ``tiny_renderer.TinyRendererScene``) holds one ``p.DIRECT`` client with a
ground plane and the pillar bodies; for each image it moves the pillars to that
environment's layout and renders from the drone's camera pose. Only the pillars and the
ground are drawn (no walls, no drone).

Camera model (the sim bridge publishes ``sensor_msgs/CameraInfo`` from these):
mounted ``MOUNT_TRANSLATION`` ahead of the body origin, looking along body x with body z
up; a pinhole with vertical field of view ``VFOV_DEG`` and square pixels.
"""

from __future__ import annotations

import math

import numpy as np

from .quadrotor_world import NUM_PILLARS, PILLAR_HEIGHT, PILLAR_RADIUS
from .tiny_renderer import TinyRendererScene, grid_mesh

IMAGE_SIZE = 64  # px, square images
VFOV_DEG = 80.0
NEAR = 0.05  # m
FAR = 25.0  # m
MOUNT_TRANSLATION = np.array([0.1, 0.0, 0.0])  # m, camera centre in the body frame
# Body -> camera optical frame (REP 103: optical z forward, x right, y down). Columns are
# the optical axes in body coordinates; the same rotation as a quaternion (x, y, z, w).
MOUNT_ROTATION = np.array([[0.0, 0.0, 1.0],
                           [-1.0, 0.0, 0.0],
                           [0.0, -1.0, 0.0]])
MOUNT_QUATERNION_XYZW = np.array([-0.5, 0.5, -0.5, 0.5])

PILLAR_RGBA = (1.0, 0.35, 0.1, 1.0)  # orange-red
GROUND_RGBA = (0.45, 0.55, 0.4, 1.0)  # grey-green
# A tube of this many flat sides, without caps: the camera stays inside the 6 m high box,
# so the caps (at the ground and at the box ceiling) are never visible. Fewer triangles and
# no caps made rendering about twice as fast as pybullet's GEOM_CYLINDER.
PILLAR_SIDES = 16
# The ground is a grid of cells rather than two huge triangles: the TinyRenderer scans each
# triangle's screen bounding box, and smaller triangles waste fewer pixels.
GROUND_HALF = 55.0  # m, covers the box plus the camera's far distance
GROUND_CELLS = 6  # per side


def horizontal_fov_deg(width: int = IMAGE_SIZE, height: int = IMAGE_SIZE,
                       vfov_deg: float = VFOV_DEG) -> float:
    half = math.atan(math.tan(math.radians(vfov_deg) / 2.0) * width / height)
    return math.degrees(2.0 * half)


def intrinsics(width: int = IMAGE_SIZE, height: int = IMAGE_SIZE,
               vfov_deg: float = VFOV_DEG) -> tuple[float, float, float, float]:
    """Pinhole ``(fx, fy, cx, cy)`` in pixels, ROS/OpenCV convention (pixel centres at
    integer coordinates, so the principal point of an even-sized image is at (W-1)/2)."""
    fy = (height / 2.0) / math.tan(math.radians(vfov_deg) / 2.0)
    return fy, fy, (width - 1) / 2.0, (height - 1) / 2.0


def camera_matrix(width: int = IMAGE_SIZE, height: int = IMAGE_SIZE,
                  vfov_deg: float = VFOV_DEG) -> np.ndarray:
    """The 3x3 ``K`` of ``sensor_msgs/CameraInfo``."""
    fx, fy, cx, cy = intrinsics(width, height, vfov_deg)
    return np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]])


class PillarCamera(TinyRendererScene):
    """Renders batches of drone camera images of the pillar course."""

    def __init__(self, width: int = IMAGE_SIZE, height: int | None = None,
                 num_pillars: int = NUM_PILLARS) -> None:
        super().__init__(width, width if height is None else height, VFOV_DEG, NEAR, FAR)
        self._add_ground()
        shape = self._pillar_shape()
        self._pillars = [self.add_body(shape, [0.0, 0.0, PILLAR_HEIGHT / 2.0])
                         for _ in range(num_pillars)]

    def _add_ground(self) -> None:
        ticks = np.linspace(-GROUND_HALF, GROUND_HALF, GROUND_CELLS + 1)
        gx, gy = np.meshgrid(ticks, ticks, indexing="ij")
        points = np.stack([gx, gy, np.zeros_like(gx)], axis=-1)
        self.add_body(self.mesh_shape(*grid_mesh(points, [0.0, 0.0, 1.0]), GROUND_RGBA))

    def _pillar_shape(self) -> int:
        angles = 2.0 * np.pi * (np.arange(PILLAR_SIDES) + 0.5) / PILLAR_SIDES
        ring = PILLAR_RADIUS * np.stack([np.cos(angles), np.sin(angles)], axis=1)
        half = PILLAR_HEIGHT / 2.0
        vertices = np.concatenate([np.c_[ring, np.full(PILLAR_SIDES, -half)],
                                   np.c_[ring, np.full(PILLAR_SIDES, half)]])
        indices = []
        for i in range(PILLAR_SIDES):
            j = (i + 1) % PILLAR_SIDES
            top_i, top_j = i + PILLAR_SIDES, j + PILLAR_SIDES
            indices += [i, j, top_j, i, top_j, top_i]  # counter-clockwise seen from outside
        # Radial normals: smooth shading, so the 16-sided tube looks round.
        normals = np.concatenate([np.c_[ring, np.zeros(PILLAR_SIDES)]] * 2) / PILLAR_RADIUS
        return self.mesh_shape(vertices, indices, normals, PILLAR_RGBA)

    def render(self, positions: np.ndarray, rotations: np.ndarray,
               pillar_xy: np.ndarray) -> np.ndarray:
        """Images ``(N, H, W, 3)`` uint8 RGB, row 0 at the top, for drones at ``positions``
        ``(N, 3)`` with body->world ``rotations`` ``(N, 3, 3)`` among pillars ``(N, P, 2)``."""
        positions = np.asarray(positions, dtype=np.float64).reshape(-1, 3)
        rotations = np.asarray(rotations, dtype=np.float64).reshape(-1, 3, 3)
        pillar_xy = np.asarray(pillar_xy, dtype=np.float64).reshape(len(positions), -1, 2)
        eyes = positions + rotations @ MOUNT_TRANSLATION
        targets = eyes + rotations[:, :, 0]
        ups = rotations[:, :, 2]
        pillar_xyz = np.concatenate(
            [pillar_xy, np.full((*pillar_xy.shape[:2], 1), PILLAR_HEIGHT / 2.0)], axis=2)
        return self.render_views(
            eyes, targets, ups, lambda i: self.move_bodies(self._pillars, pillar_xyz[i]))
