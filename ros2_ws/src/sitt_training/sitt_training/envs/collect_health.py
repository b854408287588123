"""CollectHealth (TSRA paper): collect five boxes in a room; the student must look for them.

An 8 m x 8 m room (``|x|, |y| <= ROOM_HALF``) with 2 m walls. Every episode places
``NUM_BOXES`` red boxes (0.4 m cubes on the floor) and the agent, a point with radius
``AGENT_RADIUS`` carrying a camera at ``CAMERA_HEIGHT``. x is east, y is north.

Actions (``Discrete(10)``):

* ``0..7`` move ``STEP`` metres in the absolute direction N, NE, E, SE, S, SW, W, NW
  (``DIRECTIONS``: clockwise from north; diagonal moves are as long as straight ones). A
  move does not turn the camera.
* ``8`` turns the camera 45 degrees left (counter-clockwise), ``9`` 45 degrees right. A turn
  does not move the agent.

The camera heading is one of the same 8 directions (index ``h``, facing ``DIRECTIONS[h]``),
drawn at random per episode: a student can always move exactly where it looks, and the
heading is an exact integer (no drift from adding 45 degrees in floating point). The paper
gives the turn angle but its value did not survive in our copy of the text; 45 degrees
matches the 8 move directions.

Rewards: ``REWARD_BOX`` per box collected (the agent's centre comes within
``COLLECT_RADIUS`` of a box's centre after a move; the box disappears); every step, move or
turn, costs ``STEP_PENALTY``. A move that would bring the agent's body into a wall
(centre beyond ``ROOM_HALF - AGENT_RADIUS``) is a collision: the agent stays where it
was, ``PENALTY_WALL`` is subtracted and the episode ends (as TunnelVision's collisions do,
with the same penalty). Collecting all boxes ends the episode as a success; episodes are
truncated at ``time_limit`` steps (``TIME_LIMIT``: a greedy teacher needs about 50, a
student that turns to look about twice that). Episode summaries: ``success``, ``boxes``
(collected), ``collision``, ``turns`` (turn actions) and ``box_in_view``: the fraction of
the episode's decisions taken with at least one uncollected box centre inside the camera's
field of view (analytic; the room is convex and boxes are low, so only another box could
hide one).

Observations:

* ``teacher`` (float32, 19): the agent position ``(x, y) / ROOM_HALF``, the heading
  ``(cos, sin)`` (the unit vector it faces, x and y), then five box slots, each a box's
  position relative to the agent ``/ ROOM_HALF`` and a collected flag: the uncollected
  boxes nearest first, then the collected ones (relative position zero, flag 1).
* ``student``: ``{"image": uint8 (64, 64, 3), "state": float32 (4,)}``: a first-person
  image with a 90 degree field of view (``FOV_DEG``, horizontal and vertical) looking
  horizontally along the heading, and the same position and heading as the teacher.
  Images are rendered with pybullet's TinyRenderer (``tiny_renderer``) only for the
  environments in the student mask. Boxes are bright red, the walls pale blue, the floor
  grey; collected boxes are not drawn.

Why this is an imitation gap: the teacher knows where every box is and its cheapest way
is to walk straight to the next box without ever turning (a turn costs a step). A student
copying those moves walks toward boxes it cannot see; to imitate, it needs a teacher that
first turns the camera toward its target, something the teacher never does on its own.

Layouts (``sample_layout``): the start lies at least ``START_MARGIN`` from the walls, box
centres at least ``BOX_MARGIN`` from the walls (so every box can be reached without
touching one), ``MIN_BOX_DISTANCE`` from each other (more than twice the collection
radius, so one step never collects two boxes) and ``MIN_START_DISTANCE`` from the start.
They are drawn per episode from ``default_rng([layout_seed, layout_id, episode_index])``
(as the quadrotor and TunnelVision tasks do): environment ``i`` of a batch built with seed
``s`` runs the same episodes for any batch size, ``reset_to(i)`` reproduces them with one
environment, and the evaluation seeds (``seeds.py``) never share a stream with training.
"""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np

from .base import LayoutVecEnv, SingleTaskEnv
from .tiny_renderer import TinyRendererScene, grid_mesh

ROOM_HALF = 4.0  # m, the room is 8 m x 8 m
WALL_HEIGHT = 2.0  # m
NUM_BOXES = 5
BOX_HALF = 0.2  # m, boxes are 0.4 m cubes standing on the floor
AGENT_RADIUS = 0.2  # m
COLLECT_RADIUS = 0.5  # m, agent centre to box centre (horizontal)
STEP = 0.3  # m per move, straight or diagonal
NUM_HEADINGS = 8  # 45 degree turns
TIME_LIMIT = 300

START_MARGIN = 1.0  # m, start to the walls
BOX_MARGIN = 0.8  # m, box centre to the walls
MIN_BOX_DISTANCE = 1.2  # m, box centre to box centre
MIN_START_DISTANCE = 1.5  # m, box centre to the start
_CANDIDATE_BATCH = 16  # box positions drawn per rng call

REWARD_BOX = 1.0
STEP_PENALTY = 0.01
PENALTY_WALL = 1.0

# Camera: horizontal, at CAMERA_HEIGHT, square images with this field of view both ways.
IMAGE_SIZE = 64
FOV_DEG = 90.0
CAMERA_HEIGHT = 0.6  # m
NEAR = 0.05  # m
FAR = 15.0  # m, beyond the room's diagonal (11.3 m)

BOX_RGBA = (0.95, 0.05, 0.05, 1.0)  # bright red
WALL_RGBA = (0.55, 0.65, 0.85, 1.0)  # pale blue
FLOOR_RGBA = (0.5, 0.5, 0.47, 1.0)  # grey
# The TinyRenderer divides by zero and loops practically forever (a 0/0 screen coordinate
# makes its bounding-box scan start near INT_MIN) when a mesh vertex lies exactly on the
# camera's vertical axis: with a level camera, directly below or above the eye. So no vertex
# lies where the agent can stand: the floor is one quad (two triangles; finer grids were
# not faster here) with its corners at the walls, the walls' vertices are on the walls, an
# uncollected box is more than COLLECT_RADIUS - sqrt(2) BOX_HALF from the agent, and a
# collected box is moved out of the room, below the floor (hidden) and beyond FAR.
HIDDEN_POSITION = (100.0, 100.0, -100.0)
WALL_CELLS = 4  # along each wall: smaller triangles are cheaper for the TinyRenderer

NUM_MOVES = 8
TURN_LEFT, TURN_RIGHT = 8, 9
NUM_ACTIONS = 10
_DIAG = math.sqrt(0.5)
# Unit vectors (x east, y north) of moves 0..7 and headings 0..7: N, NE, E, SE, S, SW, W, NW.
DIRECTIONS = np.array([[0.0, 1.0], [_DIAG, _DIAG], [1.0, 0.0], [_DIAG, -_DIAG],
                       [0.0, -1.0], [-_DIAG, -_DIAG], [-1.0, 0.0], [-_DIAG, _DIAG]])
DIRECTION_NAMES = ("N", "NE", "E", "SE", "S", "SW", "W", "NW")

TEACHER_DIM = 2 + 2 + 3 * NUM_BOXES  # 19
STATE_DIM = 2 + 2  # 4

_HALF_FOV_TAN = math.tan(math.radians(FOV_DEG) / 2.0)


def sample_layout(rng: np.random.Generator) -> tuple[np.ndarray, int, np.ndarray]:
    """One episode: start ``(2,)``, heading index and box centres ``(NUM_BOXES, 2)``."""
    reach = ROOM_HALF - START_MARGIN
    start = rng.uniform(-reach, reach, 2)
    heading = int(rng.integers(NUM_HEADINGS))
    reach = ROOM_HALF - BOX_MARGIN
    boxes: list[np.ndarray] = []
    # Always ends: 5 boxes with these distances cover a small part of the 6.4 m square.
    while len(boxes) < NUM_BOXES:
        for candidate in rng.uniform(-reach, reach, (_CANDIDATE_BATCH, 2)):
            if np.hypot(*(candidate - start)) < MIN_START_DISTANCE:
                continue
            if any(np.hypot(*(candidate - box)) < MIN_BOX_DISTANCE for box in boxes):
                continue
            boxes.append(candidate)
            if len(boxes) == NUM_BOXES:
                break
    return start, heading, np.array(boxes)


def boxes_in_view(pos: np.ndarray, heading: np.ndarray, boxes: np.ndarray,
                  collected: np.ndarray) -> np.ndarray:
    """``(n, NUM_BOXES)`` bool: the box centre is inside the camera's field of view (and
    not collected). ``pos`` ``(n, 2)``, ``heading`` ``(n,)`` indices, ``boxes``
    ``(n, B, 2)``."""
    forward = DIRECTIONS[heading]  # (n, 2)
    rel = boxes - pos[:, None, :]
    ahead = np.einsum("nbk,nk->nb", rel, forward)
    lateral = rel[..., 0] * forward[:, None, 1] - rel[..., 1] * forward[:, None, 0]
    return (~collected & (np.abs(lateral) <= ahead * _HALF_FOV_TAN)
            & (CAMERA_HEIGHT - BOX_HALF <= ahead * _HALF_FOV_TAN))


class RoomCamera(TinyRendererScene):
    """Renders batches of first-person images of the room with its boxes."""

    def __init__(self, size: int = IMAGE_SIZE) -> None:
        super().__init__(size, size, FOV_DEG, NEAR, FAR)
        h = ROOM_HALF
        gx, gy = np.meshgrid([-h, h], [-h, h], indexing="ij")
        floor = np.stack([gx, gy, np.zeros_like(gx)], axis=-1)
        self.add_body(self.mesh_shape(*grid_mesh(floor, [0.0, 0.0, 1.0]), FLOOR_RGBA))
        along = np.linspace(-h, h, WALL_CELLS + 1)
        up = np.array([0.0, WALL_HEIGHT])
        a, z = np.meshgrid(along, up, indexing="ij")
        full = np.full_like(a, h)
        # Each wall's grid runs so that (along x up) is its inward normal.
        walls = [
            (np.stack([a, full, z], axis=-1), [0.0, -1.0, 0.0]),  # north, y = +h
            (np.stack([-a, -full, z], axis=-1), [0.0, 1.0, 0.0]),  # south
            (np.stack([full, -a, z], axis=-1), [-1.0, 0.0, 0.0]),  # east, x = +h
            (np.stack([-full, a, z], axis=-1), [1.0, 0.0, 0.0]),  # west
        ]
        for points, normal in walls:
            self.add_body(self.mesh_shape(*grid_mesh(points, normal), WALL_RGBA))
        shape = self.mesh_shape(*_box_mesh(), BOX_RGBA)
        self._boxes = [self.add_body(shape, list(HIDDEN_POSITION)) for _ in range(NUM_BOXES)]

    def render(self, pos: np.ndarray, heading: np.ndarray, boxes: np.ndarray,
               collected: np.ndarray) -> np.ndarray:
        """Images ``(N, S, S, 3)`` uint8 RGB, row 0 at the top, for agents at ``pos``
        ``(N, 2)`` facing heading indices ``(N,)`` among boxes ``(N, B, 2)``, collected
        ones ``(N, B)`` bool not drawn."""
        pos = np.asarray(pos, dtype=np.float64).reshape(-1, 2)
        n = len(pos)
        eyes = np.c_[pos, np.full(n, CAMERA_HEIGHT)]
        targets = eyes + np.c_[DIRECTIONS[np.asarray(heading).reshape(n)], np.zeros(n)]
        ups = np.tile([0.0, 0.0, 1.0], (n, 1))
        placed = np.concatenate([np.asarray(boxes, dtype=np.float64).reshape(n, -1, 2),
                                 np.full((n, NUM_BOXES, 1), BOX_HALF)], axis=2)
        placed[np.asarray(collected, dtype=bool).reshape(n, -1)] = HIDDEN_POSITION
        return self.render_views(eyes, targets, ups,
                                 lambda i: self.move_bodies(self._boxes, placed[i]))


def _box_mesh() -> tuple[np.ndarray, list[int], np.ndarray]:
    """A cube of half size ``BOX_HALF`` centred on its body origin, without a bottom face
    (it stands on the floor), with flat normals (4 vertices per face)."""
    b = BOX_HALF
    faces = [  # (corner, edge u, edge v, normal) with u x v = normal
        ([-b, -b, b], [2 * b, 0, 0], [0, 2 * b, 0], [0, 0, 1]),  # top
        ([b, -b, -b], [0, 2 * b, 0], [0, 0, 2 * b], [1, 0, 0]),  # +x
        ([-b, b, -b], [0, -2 * b, 0], [0, 0, 2 * b], [-1, 0, 0]),  # -x
        ([b, b, -b], [-2 * b, 0, 0], [0, 0, 2 * b], [0, 1, 0]),  # +y
        ([-b, -b, -b], [2 * b, 0, 0], [0, 0, 2 * b], [0, -1, 0]),  # -y
    ]
    vertices, indices, normals = [], [], []
    for corner, u, v, normal in faces:
        c, u, v = np.array(corner, float), np.array(u, float), np.array(v, float)
        first = len(vertices)
        vertices += [c, c + u, c + u + v, c + v]
        indices += [first, first + 1, first + 2, first, first + 2, first + 3]
        normals += [normal] * 4
    return np.array(vertices), indices, np.array(normals, dtype=np.float64)


class CollectHealthVecEnv(LayoutVecEnv):
    """Batched CollectHealth rooms. Episode ``k`` of environment ``i`` uses the layout
    drawn from ``(seed, i, k)``; ``reset_to`` starts environments on another environment's
    episodes. ``time_limit`` is the episode length in steps, ``image_size`` the side of
    the square student images."""

    _state_attrs = (
        "pos", "heading", "boxes", "collected", "steps", "turns", "view_steps",
    )

    def __init__(self, num_envs: int = 1, seed: int = 0, time_limit: int = TIME_LIMIT,
                 image_size: int = IMAGE_SIZE) -> None:
        if isinstance(time_limit, bool) or int(time_limit) != time_limit or time_limit < 1:
            raise ValueError(f"time_limit must be an integer >= 1, got {time_limit!r}")
        if (isinstance(image_size, bool) or int(image_size) != image_size
                or not 8 <= image_size <= 512):
            raise ValueError(f"image_size must be an integer in [8, 512], got {image_size!r}")
        teacher_space = gym.spaces.Box(-2.0, 2.0, (TEACHER_DIM,), np.float32)
        student_space = gym.spaces.Dict({
            "image": gym.spaces.Box(0, 255, (int(image_size), int(image_size), 3), np.uint8),
            "state": gym.spaces.Box(-1.0, 1.0, (STATE_DIM,), np.float32),
        })
        super().__init__(num_envs, teacher_space, student_space,
                         gym.spaces.Discrete(NUM_ACTIONS))
        self.time_limit = int(time_limit)
        self.image_size = int(image_size)
        n = num_envs
        self.pos = np.zeros((n, 2))
        self.heading = np.zeros(n, dtype=np.int64)
        self.boxes = np.zeros((n, NUM_BOXES, 2))
        self.collected = np.zeros((n, NUM_BOXES), dtype=bool)
        self.steps = np.zeros(n, dtype=np.int64)
        self.turns = np.zeros(n, dtype=np.int64)
        self.view_steps = np.zeros(n, dtype=np.int64)  # decisions with a box in view
        self._camera: RoomCamera | None = None  # created on the first rendered image
        self._init_layouts(seed)
        self._reset_envs(np.arange(n))

    # ------------------------------------------------------------ public accessors
    def trace(self) -> np.ndarray:
        """Per env ``[x, y, camera height, camera_axis_x, camera_axis_y]``: the quadrotor's
        layout, so its top-view trajectory plot (``sitt-eval --plot``) draws this task too."""
        n = self.num_envs
        return np.concatenate([self.pos, np.full((n, 1), CAMERA_HEIGHT),
                               DIRECTIONS[self.heading]], axis=1)

    def scene(self) -> np.ndarray:
        """Box centres of the current episodes ``(num_envs, NUM_BOXES, 2)`` (collected
        ones included: the layout, not its state)."""
        return self.boxes.copy()

    def render_images(self, ids: np.ndarray) -> np.ndarray:
        """Camera images ``(n, H, W, 3)`` uint8 of the given environments."""
        if self._camera is None:
            self._camera = RoomCamera(self.image_size)
        return self._camera.render(self.pos[ids], self.heading[ids], self.boxes[ids],
                                   self.collected[ids])

    def close_extras(self, **kwargs: object) -> None:
        if self._camera is not None:
            self._camera.close()
            self._camera = None

    # ----------------------------------------------------------------- task hooks
    def _reset_envs(self, env_ids: np.ndarray) -> None:
        env_ids = np.asarray(env_ids, dtype=np.int64)
        for i, rng in zip(env_ids.tolist(), self._episode_rngs(env_ids), strict=True):
            self.pos[i], self.heading[i], self.boxes[i] = sample_layout(rng)
        self.collected[env_ids] = False
        self.steps[env_ids] = 0
        self.turns[env_ids] = 0
        self.view_steps[env_ids] = 0

    def _step(
        self, actions: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, np.ndarray]]:
        actions = self._check_actions(actions)
        self.view_steps += boxes_in_view(self.pos, self.heading, self.boxes,
                                         self.collected).any(axis=1)
        move = actions < NUM_MOVES
        turn = ~move
        target = self.pos + STEP * DIRECTIONS[np.where(move, actions, 0)]
        limit = ROOM_HALF - AGENT_RADIUS
        collision = move & (np.abs(target) > limit).any(axis=1)
        moved = move & ~collision
        self.pos = np.where(moved[:, None], target, self.pos)
        self.heading = np.where(
            turn, (self.heading + np.where(actions == TURN_RIGHT, 1, -1)) % NUM_HEADINGS,
            self.heading)
        rel = self.boxes - self.pos[:, None, :]
        near = np.einsum("nbk,nbk->nb", rel, rel) <= COLLECT_RADIUS ** 2
        new = moved[:, None] & near & ~self.collected
        self.collected |= new
        self.turns += turn
        self.steps += 1
        success = self.collected.all(axis=1)
        reward = (REWARD_BOX * new.sum(axis=1) - STEP_PENALTY - PENALTY_WALL * collision)
        terminated = success | collision
        truncated = (self.steps >= self.time_limit) & ~terminated
        summary = {
            "success": success,
            "boxes": self.collected.sum(axis=1).astype(np.float64),
            "collision": collision,
            "turns": self.turns.astype(np.float64),
            "box_in_view": self.view_steps / self.steps,
        }
        return reward.astype(np.float32), terminated, truncated, summary

    def _check_actions(self, actions: np.ndarray) -> np.ndarray:
        actions = np.asarray(actions)
        if actions.size != self.num_envs:
            raise ValueError(f"expected {self.num_envs} actions, got shape {actions.shape}")
        actions = actions.reshape(self.num_envs)
        if actions.dtype.kind not in "iuf" or (
                actions.dtype.kind == "f" and not np.all(np.mod(actions, 1.0) == 0.0)):
            raise ValueError(f"collect health actions are integers 0..{NUM_ACTIONS - 1}, "
                             f"got {actions}")
        actions = actions.astype(np.int64)
        if actions.min() < 0 or actions.max() >= NUM_ACTIONS:
            raise ValueError(
                f"collect health actions are 0..{NUM_ACTIONS - 1} (0-7 move "
                f"{'/'.join(DIRECTION_NAMES)}, 8 turn left, 9 turn right), got "
                f"{actions.min()}..{actions.max()}")
        return actions

    def _state_vector(self, rows: np.ndarray | slice) -> np.ndarray:
        return np.concatenate([self.pos[rows] / ROOM_HALF, DIRECTIONS[self.heading[rows]]],
                              axis=1).astype(np.float32)

    def _teacher_obs(self) -> np.ndarray:
        rel = (self.boxes - self.pos[:, None, :]) / ROOM_HALF
        rel[self.collected] = 0.0
        slots = np.concatenate([rel, self.collected[:, :, None]], axis=2)
        # Nearest uncollected box first, collected ones last. In the order drawn, an MLP
        # teacher has to learn an argmin over five slots; PPO found a patrol of the walls
        # instead (3.4-4.0 of 5 boxes in 600 iterations, session 28).
        distance = np.einsum("nbk,nbk->nb", rel, rel) + self.collected * 100.0
        order = np.argsort(distance, axis=1, kind="stable")
        slots = np.take_along_axis(slots, order[:, :, None], axis=1)
        return np.concatenate([self._state_vector(slice(None)),
                               slots.reshape(self.num_envs, -1).astype(np.float32)], axis=1)

    def _student_obs(self, env_ids: np.ndarray) -> dict[str, np.ndarray]:
        return {"image": self.render_images(env_ids), "state": self._state_vector(env_ids)}


class CollectHealthEnv(SingleTaskEnv):
    """A single room for ``gymnasium.make("sitt/CollectHealth-v0")``."""

    def __init__(self, seed: int = 0, time_limit: int = TIME_LIMIT,
                 image_size: int = IMAGE_SIZE) -> None:
        super().__init__(CollectHealthVecEnv(1, seed=seed, time_limit=time_limit,
                                             image_size=image_size))

    def close(self) -> None:
        self.vec.close()  # releases the pybullet renderer
