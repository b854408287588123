"""TunnelVision: observations, faced cells, rewards, per-episode layouts, gymnasium API."""

from collections import deque

import gymnasium as gym
import numpy as np
import pytest
from env_checks import assert_same_steps

import sitt_training.envs  # noqa: F401  (registers sitt/TunnelVision-v0)
from sitt_training.envs import TASKS, make_task
from sitt_training.envs.base import layout_rng
from sitt_training.envs.tunnel_vision import (
    GOAL,
    GRID,
    MOVES,
    START,
    STUDENT_DIM,
    TEACHER_DIM,
    TunnelVisionVecEnv,
    generate_layout,
    pad,
)

UP, RIGHT, DOWN, LEFT = 0, 1, 2, 3
TURN = 4  # TURN + d: turn to face direction d

# Absolute offsets (drow, dcol) of front-left, front, front-right per heading, written out
# by hand (heading up: up-left, up, up-right; heading right: up-right, right, down-right...).
FACED_OFFSETS = {
    UP: [(-1, -1), (-1, 0), (-1, 1)],
    RIGHT: [(-1, 1), (0, 1), (1, 1)],
    DOWN: [(1, 1), (1, 0), (1, -1)],
    LEFT: [(1, -1), (0, -1), (-1, -1)],
}
# The teacher's neighbour order, as documented.
TEACHER_OFFSETS = [(-1, -1), (-1, 0), (-1, 1), (0, 1), (1, 1), (1, 0), (1, -1), (0, -1)]


def _occupied(grid: np.ndarray, r: int, c: int) -> bool:
    return not (0 <= r < GRID and 0 <= c < GRID) or bool(grid[r, c])


def _place(env: TunnelVisionVecEnv, grid: np.ndarray, pos: tuple[int, int],
           heading: int = UP) -> None:
    """Put env 0 in a hand-made layout through the checkpoint interface."""
    state = env.state_dict()
    state["obstacles"][0] = grid
    state["_padded"][0] = pad(grid)
    state["pos"][0] = pos
    state["heading"][0] = heading
    env.load_state_dict(state)


def _bfs_path(grid: np.ndarray) -> list[tuple[int, int]]:
    """Shortest 4-connected path of free cells from START to GOAL ([] if none)."""
    parent = {START: None}
    queue = deque([START])
    while queue:
        cell = queue.popleft()
        if cell == GOAL:
            path = [cell]
            while parent[path[-1]] is not None:
                path.append(parent[path[-1]])
            return path[::-1]
        for dr, dc in MOVES.tolist():
            nxt = (cell[0] + dr, cell[1] + dc)
            if not _occupied(grid, *nxt) and nxt not in parent:
                parent[nxt] = cell
                queue.append(nxt)
    return []


def _path_actions(path: list[tuple[int, int]]) -> list[int]:
    moves = {tuple(m): d for d, m in enumerate(MOVES.tolist())}
    return [moves[(b[0] - a[0], b[1] - a[1])] for a, b in zip(path[:-1], path[1:], strict=True)]


def test_spaces_and_observation_layout() -> None:
    env = TunnelVisionVecEnv(4, seed=0)
    assert env.single_observation_space["teacher"].shape == (TEACHER_DIM,) == (14,)
    assert env.single_observation_space["student"].shape == (STUDENT_DIM,) == (9,)
    assert env.single_action_space == gym.spaces.Discrete(8)
    obs, _ = env.reset(seed=0)
    assert obs["teacher"].dtype == np.float32 and obs["student"].dtype == np.float32
    assert env.observation_space.contains(obs)
    # At the start (bottom-left, facing up): up-left, down-right, down, down-left and left
    # are wall, the start's neighbours are never obstacles; position (1, 0); heading up.
    np.testing.assert_array_equal(obs["teacher"][:, :8], [[1, 0, 0, 0, 1, 1, 1, 1]] * 4)
    np.testing.assert_array_equal(obs["teacher"][:, 8:], [[1, 0, 1, 0, 0, 0]] * 4)
    np.testing.assert_array_equal(obs["student"], [[1, 0, 0, 1, 0, 1, 0, 0, 0]] * 4)


def test_faced_cells_for_each_heading() -> None:
    env = TunnelVisionVecEnv(1, seed=0, obstacle_prob=0.0)
    grid = np.zeros((GRID, GRID), dtype=bool)
    for r, c in [(4, 4), (4, 5), (5, 6), (6, 4)]:  # up-left, up, right, down-left of (5, 5)
        grid[r, c] = True
    _place(env, grid, (5, 5))
    expected = {UP: [1, 1, 0], RIGHT: [0, 1, 0], DOWN: [0, 0, 1], LEFT: [1, 0, 1]}
    for heading in (RIGHT, DOWN, LEFT, UP):
        obs, r, term, _, _ = env.step([TURN + heading])
        np.testing.assert_array_equal(obs["student"][0, :3], expected[heading])
        np.testing.assert_array_equal(obs["student"][0, 5:], np.eye(4)[heading])
        np.testing.assert_array_equal(obs["teacher"][0, :8], [1, 1, 0, 1, 0, 0, 1, 0])
        np.testing.assert_allclose(obs["student"][0, 3:5], [5 / 9, 5 / 9])
        assert tuple(env.pos[0]) == (5, 5) and not term[0]
    # The outer wall counts as occupied: top-left corner.
    _place(env, np.zeros((GRID, GRID), dtype=bool), (0, 0))
    expected = {UP: [1, 1, 1], RIGHT: [1, 0, 0], DOWN: [0, 0, 1], LEFT: [1, 1, 1]}
    for heading in (RIGHT, DOWN, LEFT, UP):
        obs, *_ = env.step([TURN + heading])
        np.testing.assert_array_equal(obs["student"][0, :3], expected[heading])


def test_student_cells_are_the_teachers_faced_neighbours_on_random_states() -> None:
    n = 64
    env = TunnelVisionVecEnv(n, seed=5, obstacle_prob=0.9)
    rng = np.random.default_rng(0)
    obs, _ = env.reset(seed=5)
    checked_headings = set()
    for _ in range(60):
        grids, pos, heading = env.scene(), env.pos, env.heading
        for i in range(n):
            r, c = pos[i]
            teacher = [_occupied(grids[i], r + dr, c + dc) for dr, dc in TEACHER_OFFSETS]
            np.testing.assert_array_equal(obs["teacher"][i, :8], teacher)
            faced = [_occupied(grids[i], r + dr, c + dc) for dr, dc in FACED_OFFSETS[heading[i]]]
            np.testing.assert_array_equal(obs["student"][i, :3], faced)
            h = int(heading[i])
            np.testing.assert_array_equal(obs["student"][i, :3],
                                          obs["teacher"][i, [2 * h, 2 * h + 1, (2 * h + 2) % 8]])
            np.testing.assert_array_equal(obs["student"][i, 3:], obs["teacher"][i, 8:])
            checked_headings.add(h)
        # Mostly turns, with some moves, so agents wander and see obstacles and walls.
        actions = np.where(rng.random(n) < 0.6, rng.integers(4, 8, n), rng.integers(0, 4, n))
        obs, *_ = env.step(actions)
    assert checked_headings == {UP, RIGHT, DOWN, LEFT}


def test_collisions_end_the_episode_without_moving() -> None:
    env = TunnelVisionVecEnv(1, seed=0)
    grid = np.zeros((GRID, GRID), dtype=bool)
    grid[START[0] - 1, START[1]] = True  # hand-placed right above the start
    _place(env, grid, START)
    _, r, term, trunc, info = env.step([UP])
    assert r[0] == pytest.approx(-1.01) and term[0] and not trunc[0]
    assert tuple(info["final_trace"][0]) == START  # did not move into the obstacle
    assert info["episode"]["collision"][0] and not info["episode"]["success"][0]
    assert info["episode"]["l"][0] == 1
    # Outer wall: left of and below the start (after the autoreset, at the start again).
    for action in (LEFT, DOWN):
        assert tuple(env.pos[0]) == START
        _, r, term, _, info = env.step([action])
        assert r[0] == pytest.approx(-1.01) and term[0]
        assert tuple(info["final_trace"][0]) == START and info["episode"]["collision"][0]
    # Top and right walls too.
    _place(env, np.zeros((GRID, GRID), dtype=bool), (0, 3))
    _, r, term, _, info = env.step([UP])
    assert term[0] and info["episode"]["collision"][0] and tuple(info["final_trace"][0]) == (0, 3)
    _place(env, np.zeros((GRID, GRID), dtype=bool), (4, GRID - 1))
    _, r, term, _, info = env.step([RIGHT])
    assert term[0] and info["episode"]["collision"][0]


def test_turns_cost_a_step_and_do_not_move() -> None:
    env = TunnelVisionVecEnv(1, seed=0, time_limit=4)
    env.reset()
    for k, heading in enumerate((RIGHT, RIGHT, LEFT)):
        obs, r, term, trunc, info = env.step([TURN + heading])
        assert r[0] == pytest.approx(-0.01) and not term[0] and not trunc[0]
        assert tuple(env.pos[0]) == START and env.heading[0] == heading
        assert env.turns[0] == k + 1 and "episode" not in info
    _, r, term, trunc, info = env.step([RIGHT])  # a move, the 4th step: time limit
    assert r[0] == pytest.approx(-0.01) and trunc[0] and not term[0]
    assert info["episode"]["turns"][0] == 3 and info["episode"]["l"][0] == 4
    assert not info["episode"]["success"][0] and not info["episode"]["collision"][0]
    assert env.turns[0] == 0 and env.heading[0] == UP  # reset for the next episode


def test_reaching_the_goal_is_a_success() -> None:
    env = TunnelVisionVecEnv(1, seed=0, obstacle_prob=0.0)
    env.reset()
    total = 0.0
    for action in [RIGHT] * (GRID - 1) + [UP] * (GRID - 1):
        _, r, term, _, info = env.step([action])
        total += float(r[0])
    assert term[0] and info["episode"]["success"][0] and not info["episode"]["collision"][0]
    assert tuple(info["final_trace"][0]) == GOAL
    assert r[0] == pytest.approx(0.99)
    assert total == pytest.approx(1.0 - 0.01 * 2 * (GRID - 1), abs=1e-5)
    assert info["episode"]["r"][0] == pytest.approx(total, abs=1e-5)


def test_layouts_per_seed_env_and_episode() -> None:
    env = TunnelVisionVecEnv(8, seed=11)
    first = env.scene()
    for i in range(8):
        np.testing.assert_array_equal(first[i], generate_layout(layout_rng(11, i, 0)))
    assert len({g.tobytes() for g in first}) == 8  # environments differ
    np.testing.assert_array_equal(TunnelVisionVecEnv(8, seed=11).scene(), first)
    assert not np.array_equal(TunnelVisionVecEnv(8, seed=12).scene(), first)
    env.reset(seed=11)  # reseeding restarts the episode sequence
    np.testing.assert_array_equal(env.scene(), first)
    # Crash every env (left from the start): the next episodes have new layouts.
    env.step(np.full(8, LEFT))
    second = env.scene()
    for i in range(8):
        np.testing.assert_array_equal(second[i], generate_layout(layout_rng(11, i, 1)))
        assert not np.array_equal(second[i], first[i])
    # Batch-size independent: env 3 of the batch of 8 == reset_to(3) of one environment,
    # for this episode and the next.
    one = TunnelVisionVecEnv(1, seed=11)
    one.reset_to(3)
    np.testing.assert_array_equal(one.scene()[0], first[3])
    one.step([LEFT])
    np.testing.assert_array_equal(one.scene()[0], second[3])
    one.reset_to(5, episode_index=1)
    np.testing.assert_array_equal(one.scene()[0], second[5])


def test_obstacles_isolated_away_from_start_and_goal_and_a_path_exists() -> None:
    keep_out = np.zeros((GRID, GRID), dtype=bool)
    for r, c in (START, GOAL):
        keep_out[max(r - 1, 0):r + 2, max(c - 1, 0):c + 2] = True
    counts = []
    for k, prob in enumerate([0.25] * 300 + [0.9] * 100):
        grid = generate_layout(layout_rng(3, k, 0), prob)
        counts.append(int(grid.sum()))
        assert not (grid & keep_out).any()
        padded = np.pad(grid, 1)
        for dr, dc in TEACHER_OFFSETS:  # no obstacle has an obstacle among its 8 neighbours
            shifted = padded[1 + dr:1 + dr + GRID, 1 + dc:1 + dc + GRID]
            assert not (grid & shifted).any()
        path = _bfs_path(grid)
        assert path and path[0] == START and path[-1] == GOAL
    assert 5 <= np.mean(counts[:300]) <= 20  # about 12 obstacles at the default 0.25
    assert np.mean(counts[300:]) > np.mean(counts[:300])
    assert not generate_layout(layout_rng(3, 0, 0), 0.0).any()


def _run_first_episodes(env: TunnelVisionVecEnv, policy) -> dict[str, np.ndarray]:
    """One episode per environment; ``policy(t, scenes)`` returns the actions at step t."""
    n = env.num_envs
    scenes = env.scene()
    finished = np.zeros(n, dtype=bool)
    result = {key: np.zeros(n) for key in ("success", "collision", "l")}
    t = 0
    while not finished.all():
        _, _, _, _, info = env.step(policy(t, scenes))
        ended = info.get("_episode", np.zeros(n, dtype=bool)) & ~finished
        for key in result:
            if ended.any():
                result[key][ended] = info["episode"][key][ended]
        finished |= ended
        t += 1
    return result


def test_scripted_bfs_teacher_always_succeeds() -> None:
    n = 200
    env = TunnelVisionVecEnv(n, seed=21)
    plans = [_path_actions(_bfs_path(grid)) for grid in env.scene()]
    # Padding after the plan (never reached: the last move ends the episode).
    plan = np.array([p + [UP] * (2 * GRID * GRID - len(p)) for p in plans])
    result = _run_first_episodes(env, lambda t, _: plan[:, t])
    assert result["success"].mean() == 1.0 and result["collision"].sum() == 0
    assert (result["l"] >= 2 * (GRID - 1)).all()  # the Manhattan distance is a lower bound


def test_moving_toward_the_goal_without_looking_collides() -> None:
    env = TunnelVisionVecEnv(200, seed=21)
    result = _run_first_episodes(env, lambda t, _: np.full(200, UP if t % 2 == 0 else RIGHT))
    assert result["collision"].mean() > 0.5  # about 0.87 with the default obstacle_prob
    assert 0 < result["success"].mean() < 0.5
    np.testing.assert_array_equal(result["success"] + result["collision"], 1)


def test_state_dict_continues_exactly() -> None:
    env = TunnelVisionVecEnv(16, seed=2)
    rng = np.random.default_rng(0)
    for _ in range(25):
        env.step(rng.integers(0, 8, 16))
    state = env.state_dict()
    actions = rng.integers(0, 8, (40, 16))
    first = [env.step(a) for a in actions]
    other = TunnelVisionVecEnv(16, seed=99, obstacle_prob=0.25)
    other.load_state_dict(state)
    second = [other.step(a) for a in actions]
    assert_same_steps(first, second)
    np.testing.assert_array_equal(env.scene(), other.scene())
    assert sum(t.sum() for _, _, t, _, _ in first) > 0  # autoresets drew new layouts


def test_validation_errors() -> None:
    env = TunnelVisionVecEnv(2, seed=0)
    with pytest.raises(ValueError, match=r"actions are 0\.\.7"):
        env.step([0, 8])
    with pytest.raises(ValueError, match=r"actions are 0\.\.7"):
        env.step([-1, 0])
    with pytest.raises(ValueError, match="integers"):
        env.step([0.5, 1.0])
    with pytest.raises(ValueError, match="obstacle_prob"):
        TunnelVisionVecEnv(1, obstacle_prob=1.0)
    with pytest.raises(ValueError, match="obstacle_prob"):
        TunnelVisionVecEnv(1, obstacle_prob=-0.1)
    with pytest.raises(ValueError, match="time_limit"):
        TunnelVisionVecEnv(1, time_limit=0)


def test_registry_and_gymnasium() -> None:
    assert TASKS["tunnel_vision"] is TunnelVisionVecEnv
    task = make_task("tunnel_vision", num_envs=3, seed=4, obstacle_prob=0.3)
    assert task.num_envs == 3 and task.obstacle_prob == 0.3
    env = gym.make("sitt/TunnelVision-v0")
    assert set(env.observation_space.spaces) == {"teacher", "student"}
    from gymnasium.utils.env_checker import check_env

    check_env(env.unwrapped, skip_render_check=True)
    obs, _ = env.reset(seed=1)
    assert env.observation_space.contains(obs)
    obs, r, term, trunc, info = env.step(LEFT)  # into the wall
    assert term and r == pytest.approx(-1.01) and info["collision"]
    vec = gym.make_vec("sitt/TunnelVision-v0", num_envs=8,
                       vectorization_mode="vector_entry_point")
    obs, _ = vec.reset(seed=0)
    assert obs["teacher"].shape == (8, TEACHER_DIM) and vec.observation_space.contains(obs)
    obs, r, term, trunc, info = vec.step(vec.action_space.sample())
    assert r.shape == (8,) and term.dtype == bool
