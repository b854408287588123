"""Color maze: layout generation, student masking, rewards, gymnasium API."""

import gymnasium as gym
import numpy as np
import pytest
from env_checks import assert_same_steps

import sitt_training.envs  # noqa: F401  (registers sitt/ColorMaze-v0)
from sitt_training.envs.color_maze import (
    EMPTY,
    GOAL,
    GRID,
    LAVA,
    MARGIN,
    MAZE,
    PATH,
    START,
    STUDENT_DIM,
    TEACHER_DIM,
    ColorMazeVecEnv,
    generate_layout,
    generate_layouts,
    load_layouts,
    validate_layouts,
)

UP, RIGHT, DOWN, LEFT = 0, 1, 2, 3


@pytest.mark.parametrize("seed", range(40))
def test_layout_structure(seed: int) -> None:
    grid = generate_layout(np.random.default_rng(seed))
    assert grid.shape == (GRID, GRID)
    border = np.ones((GRID, GRID), dtype=bool)
    border[MARGIN:-MARGIN, MARGIN:-MARGIN] = False
    assert (grid[border] == EMPTY).all(), "the 3-cell border must be empty"
    maze = grid[MARGIN:-MARGIN, MARGIN:-MARGIN]
    assert set(np.unique(maze)) <= {LAVA, PATH}, "the maze is lava except the path"
    assert grid[START] == EMPTY and grid[GOAL] == EMPTY
    # The path crosses the maze: a path cell in its top row and in its bottom row, and
    # every maze row has path cells forming one contiguous horizontal segment.
    for row in maze:
        cols = np.flatnonzero(row == PATH)
        assert cols.size >= 1 and cols.max() - cols.min() + 1 == cols.size
    # Consecutive rows connect through a shared column.
    for top, bottom in zip(maze[:-1], maze[1:], strict=True):
        assert ((top == PATH) & (bottom == PATH)).any()
    # Horizontal runs are 1..4 cells beyond the corner; vertical runs 3..5 except the last.
    widths = [(row == PATH).sum() for row in maze]
    assert max(widths) <= 5


def test_vertical_and_horizontal_run_lengths() -> None:
    for seed in range(100):
        maze = generate_layout(np.random.default_rng(seed))[MARGIN:-MARGIN, MARGIN:-MARGIN]
        turn_rows = [r for r in range(MAZE) if (maze[r] == PATH).sum() > 1]
        # Rows with a horizontal segment are separated by vertical runs of 3..5 cells
        # (the last run toward the bottom may be cut short by the maze edge).
        starts = [0, *turn_rows]
        for a, b in zip(starts[:-1], starts[1:], strict=True):
            assert 3 <= b - a <= 5, (seed, starts)
        for r in turn_rows:
            assert 2 <= (maze[r] == PATH).sum() <= 5  # 1..4 cells moved plus the corner


def test_layouts_depend_only_on_seed_and_index() -> None:
    a = generate_layouts(7, 5)
    b = generate_layouts(7, 9)
    np.testing.assert_array_equal(a, b[:5])
    assert not np.array_equal(generate_layouts(8, 5), a)
    env = ColorMazeVecEnv(5, seed=7)
    np.testing.assert_array_equal(env.grid, a)
    env.reset(seed=3)
    np.testing.assert_array_equal(env.grid, generate_layouts(3, 5))


def _corridor() -> np.ndarray:
    """A maze whose path is the centre column: the straight way up is all path."""
    grid = np.zeros((GRID, GRID), dtype=np.int64)
    grid[MARGIN:-MARGIN, MARGIN:-MARGIN] = LAVA
    grid[MARGIN:-MARGIN, GRID // 2] = PATH
    return grid


def test_rewards_and_termination() -> None:
    env = ColorMazeVecEnv(1, layouts=_corridor())
    env.reset()
    _, r, term, trunc, _ = env.step([UP])  # row 18: empty border
    assert r[0] == 0.0 and not term[0]
    _, r, _, _, _ = env.step([UP])  # row 17: first path cell
    assert r[0] == pytest.approx(0.5)
    _, r, _, _, _ = env.step([DOWN])  # back to empty
    assert r[0] == 0.0
    _, r, _, _, _ = env.step([UP])  # revisit the path cell
    assert r[0] == pytest.approx(-0.5)
    _, r, term, _, info = env.step([LEFT])  # lava
    assert r[0] == pytest.approx(-0.1) and term[0]
    assert info["episode"]["success"][0] == 0 and info["episode"]["entered_maze"][0]
    # Autoreset: back at the start.
    assert tuple(env.pos[0]) == START
    # Straight up through the corridor to the goal: 15 new path cells then +10.
    total = 0.0
    for _ in range(START[0] - GOAL[0]):
        _, r, term, trunc, info = env.step([UP])
        total += r[0]
    assert term[0] and info["episode"]["success"][0]
    assert total == pytest.approx(15 * 0.5 + 10.0)


def test_off_grid_moves_stay_and_time_limit_truncates() -> None:
    env = ColorMazeVecEnv(1, layouts=_corridor(), time_limit=5)
    env.reset()
    env.step([DOWN])  # row 20, the last row
    _, _, _, _, _ = env.step([DOWN])  # off the grid: stays
    assert tuple(env.pos[0]) == (GRID - 1, GRID // 2)
    for _ in range(2):
        _, _, term, trunc, _ = env.step([DOWN])
    _, _, term, trunc, info = env.step([DOWN])
    assert trunc[0] and not term[0] and info["episode"]["l"][0] == 5


def test_student_sees_lava_and_path_alike() -> None:
    env = ColorMazeVecEnv(1, layouts=_corridor())
    obs, _ = env.reset()
    env.step([UP])  # row 18: up is path, up-left/right would be lava
    env.step([LEFT])  # row 18, col 9: up neighbour is lava
    obs_lava = env.observe()
    env2 = ColorMazeVecEnv(1, layouts=_corridor())
    env2.reset()
    env2.step([UP])  # row 18, col 10: up neighbour is path
    obs_path = env2.observe()
    t_lava, t_path = obs_lava["teacher"][0], obs_path["teacher"][0]
    s_lava, s_path = obs_lava["student"][0], obs_path["student"][0]
    assert t_lava.shape == (TEACHER_DIM,) and s_lava.shape == (STUDENT_DIM,)
    # The cell-type part of the "up" neighbour: teacher one-hot over 4, student over 3.
    up_t = slice(2 + 4, 2 + 8)
    up_s = slice(2 + 3, 2 + 6)
    np.testing.assert_array_equal(t_lava[up_t], [0, 1, 0, 0])  # lava
    np.testing.assert_array_equal(t_path[up_t], [0, 0, 1, 0])  # path
    np.testing.assert_array_equal(s_lava[up_s], s_path[up_s])  # both "occupied"
    np.testing.assert_array_equal(s_lava[up_s], [0, 1, 0])


def test_student_observation_only_where_asked() -> None:
    env = ColorMazeVecEnv(4, seed=0)
    env.set_student_mask(np.array([True, False, True, False]))
    obs, info = env.reset()
    assert (obs["student"][[1, 3]] == 0).all()
    assert (obs["student"][[0, 2]] != 0).any(axis=1).all()
    np.testing.assert_array_equal(info["student_valid"], [True, False, True, False])
    with pytest.raises(ValueError, match="shape"):
        env.set_student_mask(np.ones(3, dtype=bool))


def test_layout_file_roundtrip_and_errors(tmp_path) -> None:
    layouts = generate_layouts(0, 3)
    path = tmp_path / "mazes.npy"
    np.save(path, layouts)
    env = ColorMazeVecEnv(5, layouts=path)
    np.testing.assert_array_equal(env.grid, layouts[[0, 1, 2, 0, 1]])
    with pytest.raises(FileNotFoundError, match="not found"):
        load_layouts(tmp_path / "missing.npy")
    bad = layouts.copy()
    bad[1, 5, 5] = 7
    with pytest.raises(ValueError, match=r"cell \(1, 5, 5\) is 7"):
        validate_layouts(bad)
    with pytest.raises(ValueError, match="shape"):
        validate_layouts(np.zeros((2, 10, 10), dtype=int))
    blocked = layouts.copy()
    blocked[2][GOAL] = LAVA
    with pytest.raises(ValueError, match="lava on the goal"):
        validate_layouts(blocked)
    (tmp_path / "junk.npy").write_text("not numpy")
    with pytest.raises(ValueError, match="not a NumPy"):
        load_layouts(tmp_path / "junk.npy")


def test_gymnasium_single_and_vector() -> None:
    env = gym.make("sitt/ColorMaze-v0")
    assert isinstance(env.observation_space, gym.spaces.Dict)
    assert set(env.observation_space.spaces) == {"teacher", "student"}
    from gymnasium.utils.env_checker import check_env

    check_env(env.unwrapped, skip_render_check=True)
    obs, _ = env.reset(seed=1)
    assert env.observation_space.contains(obs)
    vec = gym.make_vec("sitt/ColorMaze-v0", num_envs=8, vectorization_mode="vector_entry_point")
    obs, _ = vec.reset(seed=0)
    assert obs["teacher"].shape == (8, TEACHER_DIM)
    assert vec.observation_space.contains(obs)
    obs, r, term, trunc, info = vec.step(vec.action_space.sample())
    assert r.shape == (8,) and term.dtype == bool


def test_state_dict_continues_exactly() -> None:
    env = ColorMazeVecEnv(16, seed=2)
    env.reset(seed=2)
    rng = np.random.default_rng(0)
    for _ in range(20):
        env.step(rng.integers(0, 4, 16))
    state = env.state_dict()
    actions = rng.integers(0, 4, (30, 16))
    first = [env.step(a) for a in actions]
    other = ColorMazeVecEnv(16, seed=99)
    other.load_state_dict(state)
    assert_same_steps(first, [other.step(a) for a in actions])
