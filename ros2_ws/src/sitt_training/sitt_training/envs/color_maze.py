"""Color maze (SITT paper, section 5.1): a shortcut the student cannot see.

A 21x21 grid with a 15x15 maze in the centre and a 3-cell empty border. The maze is lava
except for one random path crossing it from bottom to top. The agent starts below the maze
and the goal is above it, both on the centre column. The teacher sees which neighbours are
lava and which are path; the student sees both as "occupied", so only the way around the
maze, through the empty border, is one the student can follow.

Coordinates are (row, col) with row 0 at the top; actions are 0 up, 1 right, 2 down, 3 left.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from .base import SingleTaskEnv, TeacherStudentVecEnv

GRID = 21
MARGIN = 3
MAZE = GRID - 2 * MARGIN  # 15
START = (GRID - 2, GRID // 2)  # (19, 10): below the maze
GOAL = (1, GRID // 2)  # (1, 10): above the maze
TIME_LIMIT = GRID * GRID  # 441 steps, as in the authors' code

# Cell types. WALL is what lies outside the grid (a neighbour of an edge cell).
EMPTY, LAVA, PATH, WALL = 0, 1, 2, 3
# The student's view: lava and path are both "occupied".
S_EMPTY, S_OCCUPIED, S_WALL = 0, 1, 2
STUDENT_VIEW = np.array([S_EMPTY, S_OCCUPIED, S_OCCUPIED, S_WALL], dtype=np.int64)

MOVES = np.array([[-1, 0], [0, 1], [1, 0], [0, -1]], dtype=np.int64)  # up right down left

REWARD_GOAL = 10.0
REWARD_NEW_PATH = 0.5
PENALTY_REVISIT_PATH = 0.5
PENALTY_LAVA = 0.1

# Path runs (inclusive lengths): vertical 3-5 cells, horizontal 1-4 cells. The path's
# columns stay in the central half of the maze, as in the authors' generator.
VERTICAL_RUN = (3, 5)
HORIZONTAL_RUN = (1, 4)
PATH_COLUMNS = (MAZE // 4, 3 * MAZE // 4 - 1)  # maze columns 3..10

TEACHER_DIM = 2 + 5 * 4 + 2  # goal offset, 5 cells one-hot over 4 types, last move
STUDENT_DIM = 2 + 5 * 3 + 2  # same with 3 types


def generate_layout(rng: np.random.Generator) -> np.ndarray:
    """One 21x21 grid of EMPTY / LAVA / PATH with a random path through the maze."""
    maze = np.full((MAZE, MAZE), LAVA, dtype=np.int8)
    col = int(rng.integers(PATH_COLUMNS[0], PATH_COLUMNS[1] + 1))
    row = 0
    maze[row, col] = PATH
    while True:
        run = int(rng.integers(VERTICAL_RUN[0], VERTICAL_RUN[1] + 1))
        end = min(row + run, MAZE - 1)
        maze[row : end + 1, col] = PATH
        row = end
        if row == MAZE - 1:
            break
        run = int(rng.integers(HORIZONTAL_RUN[0], HORIZONTAL_RUN[1] + 1))
        step = 1 if rng.random() < 0.5 else -1
        # Turn around at the edge of the allowed band instead of leaving it.
        if not PATH_COLUMNS[0] <= col + step * run <= PATH_COLUMNS[1]:
            step = -step
        target = int(np.clip(col + step * run, PATH_COLUMNS[0], PATH_COLUMNS[1]))
        lo, hi = sorted((col, target))
        maze[row, lo : hi + 1] = PATH
        col = target
    grid = np.full((GRID, GRID), EMPTY, dtype=np.int8)
    grid[MARGIN : MARGIN + MAZE, MARGIN : MARGIN + MAZE] = maze
    return grid


def generate_layouts(seed: int, count: int) -> np.ndarray:
    """Layout ``i`` depends only on ``(seed, i)``: environment ``i`` of any batch size."""
    return np.stack([generate_layout(np.random.default_rng([seed, i])) for i in range(count)])


def validate_layouts(layouts: np.ndarray, source: str = "layouts") -> np.ndarray:
    """Check a user-supplied array of grids; return it as ``(N, 21, 21)`` int8."""
    layouts = np.asarray(layouts)
    if layouts.ndim == 2:
        layouts = layouts[None]
    if layouts.ndim != 3 or layouts.shape[1:] != (GRID, GRID) or len(layouts) == 0:
        raise ValueError(
            f"{source}: expected an array of {GRID}x{GRID} grids, shape (N, {GRID}, {GRID}); "
            f"got shape {layouts.shape}"
        )
    if not np.issubdtype(layouts.dtype, np.integer):
        raise ValueError(f"{source}: cell values must be integers, got dtype {layouts.dtype}")
    bad = ~np.isin(layouts, (EMPTY, LAVA, PATH))
    if bad.any():
        index = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ValueError(
            f"{source}: cell {index} is {layouts[index]}; allowed are "
            f"{EMPTY} (empty), {LAVA} (lava), {PATH} (path)"
        )
    for name, (r, c) in (("start", START), ("goal", GOAL)):
        blocked = np.flatnonzero(layouts[:, r, c] == LAVA)
        if blocked.size:
            raise ValueError(f"{source}: layout {blocked[0]} has lava on the {name} cell {(r, c)}")
    return layouts.astype(np.int8)


def load_layouts(path: str | Path) -> np.ndarray:
    """Load grids from a ``.npy`` file (an array of grids, values 0 empty, 1 lava, 2 path)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"maze layout file not found: {path}")
    try:
        layouts = np.load(path, allow_pickle=False)
    except ValueError as err:
        raise ValueError(f"{path}: not a NumPy .npy array of grids ({err})") from err
    return validate_layouts(layouts, source=str(path))


class ColorMazeVecEnv(TeacherStudentVecEnv):
    """Batched color maze. Layouts are drawn per environment from the seed and stay fixed
    until the next ``reset(seed=...)``; with ``layouts`` (or a file) they come from the user,
    environment ``i`` using layout ``i % N``."""

    _state_attrs = ("grid", "_padded", "pos", "last_move", "visited", "entered_maze", "steps")

    def __init__(
        self,
        num_envs: int = 1,
        seed: int = 0,
        layouts: np.ndarray | str | Path | None = None,
        time_limit: int = TIME_LIMIT,
    ) -> None:
        teacher_space = gym.spaces.Box(-1.0, 1.0, (TEACHER_DIM,), np.float32)
        student_space = gym.spaces.Box(-1.0, 1.0, (STUDENT_DIM,), np.float32)
        super().__init__(num_envs, teacher_space, student_space, gym.spaces.Discrete(4))
        if time_limit < 1:
            raise ValueError(f"time_limit must be >= 1, got {time_limit}")
        self.time_limit = time_limit
        if isinstance(layouts, (str, Path)):
            layouts = load_layouts(layouts)
        self._user_layouts = None if layouts is None else validate_layouts(layouts)
        self.grid = np.zeros((num_envs, GRID, GRID), dtype=np.int8)
        self.pos = np.zeros((num_envs, 2), dtype=np.int64)
        self.last_move = np.zeros((num_envs, 2), dtype=np.int64)
        self.visited = np.zeros((num_envs, GRID, GRID), dtype=bool)
        self.entered_maze = np.zeros(num_envs, dtype=bool)
        self.steps = np.zeros(num_envs, dtype=np.int64)
        self._rows = np.arange(num_envs)
        self._seed(seed)
        self._reset_envs(self._rows)

    def trace(self) -> np.ndarray:
        return self.pos.copy()

    # ----------------------------------------------------------------- task hooks
    def _seed(self, seed: int | None) -> None:
        if self._user_layouts is not None:
            self.grid[:] = self._user_layouts[self._rows % len(self._user_layouts)]
        else:
            self.grid[:] = generate_layouts(0 if seed is None else seed, self.num_envs)
        # Padded copy: neighbours of edge cells read WALL without bounds checks.
        self._padded = np.full((self.num_envs, GRID + 2, GRID + 2), WALL, dtype=np.int8)
        self._padded[:, 1:-1, 1:-1] = self.grid

    def _reset_envs(self, env_ids: np.ndarray) -> None:
        self.pos[env_ids] = START
        self.last_move[env_ids] = 0
        self.visited[env_ids] = False
        self.visited[env_ids, START[0], START[1]] = True
        self.entered_maze[env_ids] = False
        self.steps[env_ids] = 0

    def _step(
        self, actions: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, np.ndarray]]:
        actions = actions.astype(np.int64).reshape(self.num_envs)
        if actions.min() < 0 or actions.max() > 3:
            raise ValueError(f"color maze actions are 0..3, got {actions.min()}..{actions.max()}")
        target = self.pos + MOVES[actions]
        inside = ((target >= 0) & (target < GRID)).all(axis=1)
        new_pos = np.where(inside[:, None], target, self.pos)  # off-grid moves stay put
        self.last_move = new_pos - self.pos
        self.pos = new_pos
        r, c = new_pos[:, 0], new_pos[:, 1]
        cell = self.grid[self._rows, r, c]
        on_path = cell == PATH
        first_visit = ~self.visited[self._rows, r, c]
        success = (r == GOAL[0]) & (c == GOAL[1])
        lava = cell == LAVA
        reward = (
            REWARD_GOAL * success
            + REWARD_NEW_PATH * (on_path & first_visit)
            - PENALTY_REVISIT_PATH * (on_path & ~first_visit)
            - PENALTY_LAVA * lava
        )
        self.visited[self._rows, r, c] = True
        self.entered_maze |= on_path | lava
        self.steps += 1
        terminated = success | lava
        truncated = (self.steps >= self.time_limit) & ~terminated
        summary = {"success": success, "entered_maze": self.entered_maze.copy()}
        return reward.astype(np.float32), terminated, truncated, summary

    def _cells(self) -> np.ndarray:
        """Types of the current cell and its up/right/down/left neighbours, ``(n, 5)``."""
        side = GRID + 2  # padded grid
        centre = (self.pos[:, 0] + 1) * side + self.pos[:, 1] + 1
        flat = (self._rows * side * side + centre)[:, None] + np.array([0, -side, 1, side, -1])
        return self._padded.reshape(-1)[flat]

    def _encode(self, cells: np.ndarray, num_types: int, env_ids: np.ndarray) -> np.ndarray:
        n = len(env_ids)
        obs = np.zeros((n, 4 + 5 * num_types), dtype=np.float32)
        obs[:, 0:2] = (np.asarray(GOAL) - self.pos[env_ids]) / (GRID - 1)
        # One-hot cell types: column 2 + neighbour * num_types + type.
        hot = 2 + np.arange(5) * num_types + cells
        obs.reshape(-1)[(np.arange(n) * obs.shape[1])[:, None] + hot] = 1.0
        obs[:, -2:] = self.last_move[env_ids]
        return obs

    def _teacher_obs(self) -> np.ndarray:
        return self._encode(self._cells(), 4, self._rows)

    def _student_obs(self, env_ids: np.ndarray) -> np.ndarray:
        cells = STUDENT_VIEW[self._cells()[env_ids]]
        return self._encode(cells, 3, env_ids)


class ColorMazeEnv(SingleTaskEnv):
    """A single color maze for ``gymnasium.make("sitt/ColorMaze-v0")``."""

    def __init__(self, seed: int = 0, layouts: Any = None, time_limit: int = TIME_LIMIT) -> None:
        super().__init__(ColorMazeVecEnv(1, seed=seed, layouts=layouts, time_limit=time_limit))
