"""TunnelVision (TSRA paper): a grid walk where the student sees only what it faces.

A ``GRID`` x ``GRID`` grid, cells ``(row, col)`` with row 0 at the top; outside the grid is
wall. The agent starts bottom-left at ``START`` facing up and must reach ``GOAL`` at the
top-right, between random obstacles drawn anew for every episode.

Agent state: position and heading ``h`` in {0 up, 1 right, 2 down, 3 left}. Actions
(``Discrete(8)``): ``0..3`` move one cell in the absolute direction ``0..3`` (the heading
does not change), ``4..7`` turn to face direction ``0..3`` (the position does not change;
turning to the current heading is a turn too). Moving into an obstacle or the outer wall is
a collision: the agent does not move, ``PENALTY_COLLISION`` is subtracted and the episode
ends. Reaching the goal earns ``REWARD_GOAL`` and ends it (a success). Every step, move or
turn, costs ``STEP_PENALTY``: the teacher, who needs no turns, finds the shortest way
(18 moves); a student pays for the turns it needs to look. Episodes are truncated at
``time_limit`` steps. Episode summaries: ``success``, ``collision`` and ``turns`` (turn
actions in the episode).

Observations (float32, all in [0, 1]):

* ``teacher`` (14): the occupancy (1 obstacle or outside-grid wall, else 0) of the 8
  neighbours in the fixed absolute order up-left, up, up-right, right, down-right, down,
  down-left, left (clockwise from up-left, ``NEIGHBOURS``), then the position
  ``(row, col) / (GRID - 1)``, then the heading one-hot (4).
* ``student`` (9): the occupancy of the 3 cells it faces, front-left, front, front-right
  relative to the heading (heading up: ``(r-1, c-1), (r-1, c), (r-1, c+1)``; heading
  right: ``(r-1, c+1), (r, c+1), (r+1, c+1)``), then the same position and heading.
  With the clockwise order these are the teacher's neighbours ``2h, 2h + 1, 2h + 2 mod 8``.

Why this is an imitation gap: the teacher sees all around and moves sideways without
turning, which is also its cheapest way (turns cost a step). A student copying it that
moves right while facing up moves into a cell it cannot see; to be safe it must turn to
face a direction before moving there, something the teacher never demonstrates.

Obstacles (``generate_layout``): the cells are visited in a random order and a cell becomes
an obstacle with probability ``obstacle_prob`` only if none of its 8 neighbours is an
obstacle already and it is not the start, the goal, or 8-adjacent to either. Obstacles are
therefore isolated: the 8 cells around each are free, so every obstacle can be walked
around through that ring, the free cells are 4-connected (a path from start to goal always
exists) and there are no dead ends or traps that a policy seeing its 8 neighbours could not
detect. The start and goal neighbourhoods stay free so the first and last moves are safe.

Layouts are drawn per episode from ``default_rng([layout_seed, layout_id, episode_index])``
(as the quadrotor task does): environment ``i`` of a batch built with seed ``s`` runs the
same episodes for any batch size, ``reset_to(i)`` reproduces them with one environment, and
the evaluation seeds (``seeds.py``) never share a layout stream with training seeds.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np

from .base import LayoutVecEnv, SingleTaskEnv

GRID = 10
START = (GRID - 1, 0)  # bottom-left
GOAL = (0, GRID - 1)  # top-right
START_HEADING = 0  # up
TIME_LIMIT = 100
OBSTACLE_PROB = 0.25

REWARD_GOAL = 1.0
PENALTY_COLLISION = 1.0
STEP_PENALTY = 0.01

UP, RIGHT, DOWN, LEFT = 0, 1, 2, 3
NUM_MOVES = 4  # actions 0..3 move, 4..7 turn
NUM_ACTIONS = 8
MOVES = np.array([[-1, 0], [0, 1], [1, 0], [0, -1]], dtype=np.int64)  # up right down left

# The 8 neighbours, clockwise from up-left: up-left, up, up-right, right, down-right, down,
# down-left, left. The straight neighbour in direction d is index 2d + 1.
NEIGHBOURS = np.array(
    [[-1, -1], [-1, 0], [-1, 1], [0, 1], [1, 1], [1, 0], [1, -1], [0, -1]], dtype=np.int64)
# Per heading, the teacher neighbour indices of front-left, front, front-right.
FACED = np.array([[2 * h, 2 * h + 1, (2 * h + 2) % 8] for h in range(4)], dtype=np.int64)

TEACHER_DIM = 8 + 2 + 4  # 14
STUDENT_DIM = 3 + 2 + 4  # 9

_SIDE = GRID + 2  # the padded grid (a wall ring around it)
_RING = [dr * _SIDE + dc for dr in (-1, 0, 1) for dc in (-1, 0, 1)]  # 3x3, padded flat


def _padded_index(r: int, c: int) -> int:
    return (r + 1) * _SIDE + c + 1


def generate_layout(rng: np.random.Generator, obstacle_prob: float = OBSTACLE_PROB
                    ) -> np.ndarray:
    """One ``(GRID, GRID)`` bool obstacle grid of isolated obstacles (module docstring)."""
    order = rng.permutation(GRID * GRID)
    candidates = order[rng.random(GRID * GRID) < obstacle_prob]  # the coin of each visit
    # ``blocked``: cells that may not become obstacles (in the padded grid, flat): the
    # start, the goal and their 8 neighbours, and every obstacle with its 8 neighbours.
    blocked = bytearray(_SIDE * _SIDE)
    for r, c in (START, GOAL):
        for off in _RING:
            blocked[_padded_index(r, c) + off] = 1
    obstacles = np.zeros(GRID * GRID, dtype=bool)
    for cell in candidates.tolist():
        centre = _padded_index(cell // GRID, cell % GRID)
        if blocked[centre]:
            continue
        obstacles[cell] = True
        for off in _RING:
            blocked[centre + off] = 1
    return obstacles.reshape(GRID, GRID)


def pad(obstacles: np.ndarray) -> np.ndarray:
    """``(..., GRID, GRID)`` obstacles -> ``(..., GRID + 2, GRID + 2)`` occupancy with a
    ring of wall, so neighbours of edge cells need no bounds checks."""
    padded = np.ones((*obstacles.shape[:-2], _SIDE, _SIDE), dtype=bool)
    padded[..., 1:-1, 1:-1] = obstacles
    return padded


class TunnelVisionVecEnv(LayoutVecEnv):
    """Batched TunnelVision. Episode ``k`` of environment ``i`` uses the obstacles drawn
    from ``(seed, i, k)``; ``reset_to`` starts environments on another environment's
    episodes. ``obstacle_prob`` is the chance that a visited cell that may hold an
    obstacle gets one; ``time_limit`` the episode length in steps."""

    _state_attrs = (
        "obstacles", "_padded", "pos", "heading", "steps", "turns",
    )

    def __init__(self, num_envs: int = 1, seed: int = 0,
                 obstacle_prob: float = OBSTACLE_PROB, time_limit: int = TIME_LIMIT) -> None:
        if not 0.0 <= obstacle_prob < 1.0:
            raise ValueError(f"obstacle_prob must be in [0, 1), got {obstacle_prob}")
        if time_limit < 1:
            raise ValueError(f"time_limit must be >= 1, got {time_limit}")
        teacher_space = gym.spaces.Box(0.0, 1.0, (TEACHER_DIM,), np.float32)
        student_space = gym.spaces.Box(0.0, 1.0, (STUDENT_DIM,), np.float32)
        super().__init__(num_envs, teacher_space, student_space,
                         gym.spaces.Discrete(NUM_ACTIONS))
        self.obstacle_prob = float(obstacle_prob)
        self.time_limit = int(time_limit)
        n = num_envs
        self.obstacles = np.zeros((n, GRID, GRID), dtype=bool)
        self._padded = pad(self.obstacles)
        self.pos = np.zeros((n, 2), dtype=np.int64)
        self.heading = np.zeros(n, dtype=np.int64)
        self.steps = np.zeros(n, dtype=np.int64)
        self.turns = np.zeros(n, dtype=np.int64)
        self._rows = np.arange(n)
        self._init_layouts(seed)
        self._reset_envs(self._rows)

    def trace(self) -> np.ndarray:
        return self.pos.copy()

    def scene(self) -> np.ndarray:
        """Obstacle grids of the current episodes, ``(num_envs, GRID, GRID)`` bool."""
        return self.obstacles.copy()

    # ----------------------------------------------------------------- task hooks
    def _reset_envs(self, env_ids: np.ndarray) -> None:
        env_ids = np.asarray(env_ids, dtype=np.int64)
        for i, rng in zip(env_ids.tolist(), self._episode_rngs(env_ids), strict=True):
            self.obstacles[i] = generate_layout(rng, self.obstacle_prob)
        self._padded[env_ids, 1:-1, 1:-1] = self.obstacles[env_ids]
        self.pos[env_ids] = START
        self.heading[env_ids] = START_HEADING
        self.steps[env_ids] = 0
        self.turns[env_ids] = 0

    def _step(
        self, actions: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, np.ndarray]]:
        actions = np.asarray(actions)
        if actions.size != self.num_envs:
            raise ValueError(f"expected {self.num_envs} actions, got shape {actions.shape}")
        actions = actions.reshape(self.num_envs)
        if actions.dtype.kind == "f" and not np.all(np.mod(actions, 1.0) == 0.0):
            raise ValueError(f"tunnel vision actions are integers 0..{NUM_ACTIONS - 1}, "
                             f"got {actions}")
        actions = actions.astype(np.int64)
        if actions.min() < 0 or actions.max() >= NUM_ACTIONS:
            raise ValueError(
                f"tunnel vision actions are 0..{NUM_ACTIONS - 1} (0-3 move up/right/down/left, "
                f"4-7 turn to face up/right/down/left), got {actions.min()}..{actions.max()}")
        move = actions < NUM_MOVES
        turn = ~move
        direction = actions % NUM_MOVES
        target = self.pos + MOVES[direction]
        # Padded lookup: the outer wall ring is occupied, targets one cell off-grid included.
        collision = move & self._padded[self._rows, target[:, 0] + 1, target[:, 1] + 1]
        moved = move & ~collision
        self.pos = np.where(moved[:, None], target, self.pos)
        self.heading = np.where(turn, direction, self.heading)
        self.turns += turn
        self.steps += 1
        success = moved & (self.pos[:, 0] == GOAL[0]) & (self.pos[:, 1] == GOAL[1])
        reward = (REWARD_GOAL * success - PENALTY_COLLISION * collision - STEP_PENALTY)
        terminated = success | collision
        truncated = (self.steps >= self.time_limit) & ~terminated
        summary = {"success": success, "collision": collision, "turns": self.turns.copy()}
        return reward.astype(np.float32), terminated, truncated, summary

    def neighbours(self, env_ids: np.ndarray | slice = slice(None)) -> np.ndarray:
        """Occupancy of the 8 neighbours (``NEIGHBOURS`` order) of the given envs, bool."""
        rows = self._rows[env_ids]
        pos = self.pos[rows]
        flat = (rows * _SIDE * _SIDE + (pos[:, 0] + 1) * _SIDE + pos[:, 1] + 1)[:, None]
        return self._padded.reshape(-1)[flat + NEIGHBOURS[:, 0] * _SIDE + NEIGHBOURS[:, 1]]

    def _pose(self, rows: np.ndarray) -> np.ndarray:
        """Position ``(row, col) / (GRID - 1)`` and heading one-hot, ``(n, 6)``."""
        pose = np.zeros((len(rows), 6), dtype=np.float32)
        pose[:, :2] = self.pos[rows] / (GRID - 1)
        pose[np.arange(len(rows)), 2 + self.heading[rows]] = 1.0
        return pose

    def _teacher_obs(self) -> np.ndarray:
        return np.concatenate([self.neighbours().astype(np.float32), self._pose(self._rows)],
                              axis=1)

    def _student_obs(self, env_ids: np.ndarray) -> np.ndarray:
        rows = self._rows[env_ids]
        faced = np.take_along_axis(self.neighbours(rows), FACED[self.heading[rows]], axis=1)
        return np.concatenate([faced.astype(np.float32), self._pose(rows)], axis=1)


class TunnelVisionEnv(SingleTaskEnv):
    """A single TunnelVision grid for ``gymnasium.make("sitt/TunnelVision-v0")``."""

    def __init__(self, seed: int = 0, obstacle_prob: float = OBSTACLE_PROB,
                 time_limit: int = TIME_LIMIT) -> None:
        super().__init__(TunnelVisionVecEnv(1, seed=seed, obstacle_prob=obstacle_prob,
                                            time_limit=time_limit))
