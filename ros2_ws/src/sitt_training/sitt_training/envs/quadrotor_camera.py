"""Forward-facing drone camera rendered with pybullet's TinyRenderer (CPU, no GPU needed).

One renderer holds one ``p.DIRECT`` client with a ground plane and the pillar bodies; for
each image it moves the pillars to that environment's layout and renders from the drone's
camera pose. Only the pillars and the ground are drawn (no walls, no drone).

Camera model (the sim bridge publishes ``sensor_msgs/CameraInfo`` from these):
mounted ``MOUNT_TRANSLATION`` ahead of the body origin, looking along body x with body z
up; a pinhole with vertical field of view ``VFOV_DEG`` and square pixels.
"""

from __future__ import annotations

import math
from types import ModuleType

import numpy as np

from .quadrotor_world import NUM_PILLARS, PILLAR_HEIGHT, PILLAR_RADIUS

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


def _pybullet() -> ModuleType:
    # Imported on first use, not with this module: teacher-only training never renders, so
    # it neither loads pybullet nor prints its build-time banner (to stderr).
    import pybullet

    return pybullet


class PillarCamera:
    """Renders batches of drone camera images of the pillar course."""

    def __init__(self, width: int = IMAGE_SIZE, height: int | None = None,
                 num_pillars: int = NUM_PILLARS) -> None:
        self._p = p = _pybullet()
        self.width = width
        self.height = width if height is None else height
        self._client = p.connect(p.DIRECT)
        self._projection = p.computeProjectionMatrixFOV(
            VFOV_DEG, self.width / self.height, NEAR, FAR, physicsClientId=self._client)
        self._add_ground()
        shape = self._pillar_shape()
        self._pillars = [
            p.createMultiBody(0.0, -1, shape, basePosition=[0.0, 0.0, PILLAR_HEIGHT / 2.0],
                              physicsClientId=self._client)
            for _ in range(num_pillars)
        ]
        self._placed = np.full((num_pillars, 2), np.nan)  # where the pillars stand now

    def _add_ground(self) -> None:
        p = self._p
        ticks = np.linspace(-GROUND_HALF, GROUND_HALF, GROUND_CELLS + 1)
        gx, gy = np.meshgrid(ticks, ticks, indexing="ij")
        vertices = np.stack([gx.ravel(), gy.ravel(), np.zeros(gx.size)], axis=1)
        indices = []
        row = GROUND_CELLS + 1
        for i in range(GROUND_CELLS):
            for j in range(GROUND_CELLS):
                a = i * row + j
                indices += [a, a + row, a + row + 1, a, a + row + 1, a + 1]
        normals = np.tile([0.0, 0.0, 1.0], (len(vertices), 1))
        shape = p.createVisualShape(p.GEOM_MESH, vertices=vertices.tolist(), indices=indices,
                                    normals=normals.tolist(), rgbaColor=GROUND_RGBA,
                                    physicsClientId=self._client)
        p.createMultiBody(0.0, -1, shape, physicsClientId=self._client)

    def _pillar_shape(self) -> int:
        p = self._p
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
        return p.createVisualShape(p.GEOM_MESH, vertices=vertices.tolist(), indices=indices,
                                   normals=normals.tolist(), rgbaColor=PILLAR_RGBA,
                                   physicsClientId=self._client)

    def render(self, positions: np.ndarray, rotations: np.ndarray,
               pillar_xy: np.ndarray) -> np.ndarray:
        """Images ``(N, H, W, 3)`` uint8 RGB, row 0 at the top, for drones at ``positions``
        ``(N, 3)`` with body->world ``rotations`` ``(N, 3, 3)`` among pillars ``(N, P, 2)``."""
        p = self._p
        positions = np.asarray(positions, dtype=np.float64).reshape(-1, 3)
        rotations = np.asarray(rotations, dtype=np.float64).reshape(-1, 3, 3)
        pillar_xy = np.asarray(pillar_xy, dtype=np.float64).reshape(len(positions), -1, 2)
        eyes = positions + rotations @ MOUNT_TRANSLATION
        targets = eyes + rotations[:, :, 0]
        ups = rotations[:, :, 2]
        images = np.empty((len(positions), self.height, self.width, 3), dtype=np.uint8)
        for i in range(len(positions)):
            self._place_pillars(pillar_xy[i])
            view = p.computeViewMatrix(eyes[i].tolist(), targets[i].tolist(), ups[i].tolist(),
                                       physicsClientId=self._client)
            rgba = p.getCameraImage(self.width, self.height, view, self._projection,
                                    shadow=0, renderer=p.ER_TINY_RENDERER,
                                    flags=p.ER_NO_SEGMENTATION_MASK,
                                    physicsClientId=self._client)[2]
            images[i] = np.asarray(rgba, dtype=np.uint8).reshape(
                self.height, self.width, 4)[:, :, :3]
        return images

    def _place_pillars(self, xy: np.ndarray) -> None:
        p = self._p
        for k, body in enumerate(self._pillars):
            if not np.array_equal(self._placed[k], xy[k]):
                p.resetBasePositionAndOrientation(
                    body, [float(xy[k, 0]), float(xy[k, 1]), PILLAR_HEIGHT / 2.0],
                    [0.0, 0.0, 0.0, 1.0], physicsClientId=self._client)
                self._placed[k] = xy[k]

    def close(self) -> None:
        client = getattr(self, "_client", None)
        if client is not None:
            self._client = None
            p = self._p
            try:
                if p.isConnected(physicsClientId=client):
                    p.disconnect(physicsClientId=client)
            except Exception:  # noqa: BLE001  (already gone, e.g. at interpreter shutdown)
                pass

    def __del__(self) -> None:
        self.close()
