"""Batched camera images from pybullet's TinyRenderer (CPU only), shared by the camera tasks.

A ``TinyRendererScene`` owns one ``p.DIRECT`` client holding static meshes (ground, walls)
and movable bodies (pillars, boxes). ``render_views`` draws one image per camera pose; a
callback moves the movable bodies to that environment's layout first, so one client serves
a whole batch of environments. ``move_bodies`` skips bodies already where they should be:
consecutive images of the same environment cost no ``resetBasePositionAndOrientation``.

Why the TinyRenderer: on these machines EGL runs on a software rasteriser and is slower
(docs/PLATFORM.md). Its cost is per triangle (a scan of each triangle's screen bounding
box) plus per covered pixel, so scenes use few, small triangles (``grid_mesh``), no
shadows and no segmentation mask.

pybullet is imported on first use, not with this module: teacher-only training never
renders, so it neither loads pybullet nor prints its build-time banner (to stderr).
"""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType

import numpy as np


def pybullet_module() -> ModuleType:
    import pybullet

    return pybullet


def grid_mesh(points: np.ndarray, normal: np.ndarray | list[float]
              ) -> tuple[np.ndarray, list[int], np.ndarray]:
    """A flat quad subdivided into cells: ``points`` ``(U + 1, V + 1, 3)`` are the grid's
    corners; returns ``(vertices, indices, normals)`` for ``createVisualShape``. Each cell
    is two triangles wound counter-clockwise seen from the side ``normal`` points to when
    ``points[i + 1, j] - points[i, j]`` crossed with ``points[i, j + 1] - points[i, j]``
    points along ``normal``."""
    points = np.asarray(points, dtype=np.float64)
    cells_u, cells_v = points.shape[0] - 1, points.shape[1] - 1
    vertices = points.reshape(-1, 3)
    row = cells_v + 1
    indices: list[int] = []
    for i in range(cells_u):
        for j in range(cells_v):
            a = i * row + j
            indices += [a, a + row, a + row + 1, a, a + row + 1, a + 1]
    normals = np.tile(np.asarray(normal, dtype=np.float64), (len(vertices), 1))
    return vertices, indices, normals


class TinyRendererScene:
    """One pybullet client with a pinhole camera of vertical field of view ``vfov_deg``
    and square pixels; subclasses add the meshes and bodies of their task."""

    def __init__(self, width: int, height: int, vfov_deg: float, near: float,
                 far: float) -> None:
        self._p = p = pybullet_module()
        self.width = width
        self.height = height
        self._client = p.connect(p.DIRECT)
        self._projection = p.computeProjectionMatrixFOV(
            vfov_deg, self.width / self.height, near, far, physicsClientId=self._client)
        self._placed: dict[int, np.ndarray] = {}  # body -> where it stands now

    def mesh_shape(self, vertices: np.ndarray, indices: list[int], normals: np.ndarray,
                   rgba: tuple[float, float, float, float]) -> int:
        """A visual shape (no collision shape: nothing here is simulated)."""
        return self._p.createVisualShape(
            self._p.GEOM_MESH, vertices=np.asarray(vertices).tolist(), indices=indices,
            normals=np.asarray(normals).tolist(), rgbaColor=rgba,
            physicsClientId=self._client)

    def add_body(self, shape: int, position: list[float] | None = None) -> int:
        """A massless body of ``shape`` at ``position`` (the origin when None)."""
        if position is None:
            return self._p.createMultiBody(0.0, -1, shape, physicsClientId=self._client)
        return self._p.createMultiBody(0.0, -1, shape, basePosition=position,
                                       physicsClientId=self._client)

    def move_bodies(self, bodies: list[int], positions: np.ndarray) -> None:
        """Put ``bodies[k]`` at ``positions[k]`` (``(K, 3)``, unrotated), skipping bodies
        already there."""
        for k, body in enumerate(bodies):
            placed = self._placed.get(body)
            if placed is None or not np.array_equal(placed, positions[k]):
                self._p.resetBasePositionAndOrientation(
                    body, [float(v) for v in positions[k]], [0.0, 0.0, 0.0, 1.0],
                    physicsClientId=self._client)
                self._placed[body] = np.array(positions[k], dtype=np.float64)

    def render_views(self, eyes: np.ndarray, targets: np.ndarray, ups: np.ndarray,
                     prepare: Callable[[int], None] | None = None) -> np.ndarray:
        """Images ``(N, H, W, 3)`` uint8 RGB, row 0 at the top, from cameras at ``eyes``
        ``(N, 3)`` looking at ``targets`` with ``ups`` up; ``prepare(i)`` sets the scene
        of image ``i`` before it is drawn."""
        p = self._p
        images = np.empty((len(eyes), self.height, self.width, 3), dtype=np.uint8)
        for i in range(len(eyes)):
            if prepare is not None:
                prepare(i)
            view = p.computeViewMatrix(eyes[i].tolist(), targets[i].tolist(), ups[i].tolist(),
                                       physicsClientId=self._client)
            rgba = p.getCameraImage(self.width, self.height, view, self._projection,
                                    shadow=0, renderer=p.ER_TINY_RENDERER,
                                    flags=p.ER_NO_SEGMENTATION_MASK,
                                    physicsClientId=self._client)[2]
            images[i] = np.asarray(rgba, dtype=np.uint8).reshape(
                self.height, self.width, 4)[:, :, :3]
        return images

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
