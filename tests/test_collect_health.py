"""CollectHealth: spaces, moves and turns, collection, walls, camera, layouts, gymnasium API."""

import math

import gymnasium as gym
import numpy as np
import pytest
from env_checks import assert_same_steps

import sitt_training.envs  # noqa: F401  (registers sitt/CollectHealth-v0)
from sitt_training.envs import TASKS, make_task
from sitt_training.envs.base import layout_rng
from sitt_training.envs.collect_health import (
    BOX_MARGIN,
    MIN_BOX_DISTANCE,
    MIN_START_DISTANCE,
    NUM_BOXES,
    ROOM_HALF,
    START_MARGIN,
    STATE_DIM,
    TEACHER_DIM,
    CollectHealthVecEnv,
    sample_layout,
)

N, NE, E, SE, S, SW, W, NW = range(8)
LEFT, RIGHT = 8, 9
# Unit vectors of the 8 directions, written out by hand (x east, y north).
R = math.sqrt(0.5)
UNIT = {N: (0, 1), NE: (R, R), E: (1, 0), SE: (R, -R), S: (0, -1), SW: (-R, -R),
        W: (-1, 0), NW: (-R, R)}
CORNER_BOXES = [[-3.0, -3.0], [-3.0, 3.0], [3.0, -3.0], [3.0, 3.0], [-3.0, 0.0]]


def _place(env, pos, heading, boxes=CORNER_BOXES, collected=None, i=0):
    """Put env ``i`` in a hand-made state through the checkpoint interface."""
    state = env.state_dict()
    state["pos"][i] = pos
    state["heading"][i] = heading
    state["boxes"][i] = boxes
    state["collected"][i] = False if collected is None else collected
    env.load_state_dict(state)


def _red(image):
    """Pixels of a (lit) red box: red channel high, green and blue low."""
    return (image[..., 0] > 120) & (image[..., 1] < 60) & (image[..., 2] < 60)


def _greedy(env):
    """Privileged policy: move in the direction closest to the nearest uncollected box."""
    rel = env.boxes - env.pos[:, None]
    dist = np.einsum("nbk,nbk->nb", rel, rel)
    dist[env.collected] = np.inf
    target = rel[np.arange(env.num_envs), dist.argmin(axis=1)]
    return (target @ np.array([UNIT[d] for d in range(8)]).T).argmax(axis=1)


def _look_then_move(env):
    """Student-like policy: turn the camera toward the greedy move before making it."""
    move = _greedy(env)
    diff = (move - env.heading) % 8
    return np.where(diff == 0, move, np.where(diff <= 4, RIGHT, LEFT))


def _first_episodes(env, policy):
    n = env.num_envs
    finished = np.zeros(n, dtype=bool)
    result = {}
    while not finished.all():
        _, _, _, _, info = env.step(policy(env))
        ended = info.get("_episode", np.zeros(n, dtype=bool)) & ~finished
        for key, values in info.get("episode", {}).items():
            result.setdefault(key, np.zeros(n))[ended] = values[ended]
        finished |= ended
    return result


def test_spaces_and_observation_layout():
    env = CollectHealthVecEnv(3, seed=0)
    assert env.single_observation_space["teacher"].shape == (TEACHER_DIM,) == (19,)
    student = env.single_observation_space["student"]
    assert student["image"].shape == (64, 64, 3) and student["image"].dtype == np.uint8
    assert student["state"].shape == (STATE_DIM,) == (4,)
    assert env.single_action_space == gym.spaces.Discrete(10)
    _place(env, [1.0, -2.0], E, collected=[False, True, False, False, False])
    obs = env.observe()
    assert env.observation_space.contains(obs)
    teacher = obs["teacher"][0]
    np.testing.assert_allclose(teacher[:4], [0.25, -0.5, 1.0, 0.0])
    # Relative position / 4 m and collected flag; nearest uncollected first.
    expected = [(2.0, -1.0, 0), (-4.0, -1.0, 0), (-4.0, 2.0, 0), (2.0, 5.0, 0), (0.0, 0.0, 1)]
    for k, (dx, dy, flag) in enumerate(expected):
        np.testing.assert_allclose(teacher[4 + 3 * k:7 + 3 * k], [dx / 4, dy / 4, flag])
    np.testing.assert_array_equal(obs["student"]["state"], obs["teacher"][:, :4])
    assert obs["student"]["state"].dtype == np.float32 and teacher.dtype == np.float32


def test_student_mask_renders_only_masked_envs():
    env = CollectHealthVecEnv(4, seed=0)
    env.set_student_mask(np.zeros(4, dtype=bool))
    env.reset(seed=0)
    env.step(np.full(4, LEFT))
    assert env._camera is None, "teacher-only stepping must not create the renderer"
    rendered = []
    original = env.render_images
    env.render_images = lambda ids: rendered.append(ids.copy()) or original(ids)
    env.set_student_mask(np.array([True, False, True, False]))
    obs, *_ = env.step(np.full(4, RIGHT))
    assert [r.tolist() for r in rendered] == [[0, 2]]
    image = obs["student"]["image"]
    assert (image[[1, 3]] == 0).all() and (obs["student"]["state"][[1, 3]] == 0).all()
    assert (image[[0, 2]] > 0).any(axis=(1, 2, 3)).all()
    env.close()
    assert env._camera is None


def test_moves_do_not_turn_and_turns_do_not_move():
    env = CollectHealthVecEnv(1, seed=0)
    for heading in (N, SW):
        for action in range(8):
            _place(env, [0.0, 0.0], heading)
            _, r, term, trunc, _ = env.step([action])
            assert r[0] == pytest.approx(-0.01) and not term[0] and not trunc[0]
            np.testing.assert_allclose(env.pos[0], 0.3 * np.array(UNIT[action]), atol=1e-12)
            assert np.hypot(*env.pos[0]) == pytest.approx(0.3)  # diagonals as long
            assert env.heading[0] == heading
    _place(env, [0.5, -1.0], N)
    for k, expected in enumerate([NE, E, SE, S, SW, W, NW, N]):  # eight right turns
        obs, r, term, _, _ = env.step([RIGHT])
        assert env.heading[0] == expected and r[0] == pytest.approx(-0.01) and not term[0]
        np.testing.assert_array_equal(env.pos[0], [0.5, -1.0])
        np.testing.assert_allclose(obs["teacher"][0, 2:4], UNIT[expected], atol=1e-7)
        assert env.turns[0] == k + 1
    env.step([LEFT])
    assert env.heading[0] == NW
    env.step([LEFT])
    assert env.heading[0] == W
    # Trace: position, camera height, camera axis (the quadrotor's layout, for its plot).
    np.testing.assert_allclose(env.trace()[0], [0.5, -1.0, 0.6, -1.0, 0.0])


def test_collection_radius_and_reward():
    env = CollectHealthVecEnv(1, seed=0)
    boxes = [[0.0, 0.81], *CORNER_BOXES[1:]]  # box 0 north of the agent
    _place(env, [0.0, 0.0], E, boxes)
    obs, r, *_ = env.step([N])  # 0.51 m away: not yet
    assert r[0] == pytest.approx(-0.01) and not env.collected[0].any()
    _place(env, [0.0, 0.0], E, [[0.0, 0.79], *CORNER_BOXES[1:]])
    obs, r, term, _, _ = env.step([N])  # 0.49 m away: collected
    assert r[0] == pytest.approx(0.99) and not term[0]
    np.testing.assert_array_equal(env.collected[0], [True, False, False, False, False])
    np.testing.assert_array_equal(obs["teacher"][0, 16:19], [0.0, 0.0, 1.0])  # last slot
    # Walking over the collected box again earns nothing.
    obs, r, *_ = env.step([S])
    obs, r, *_ = env.step([N])
    assert r[0] == pytest.approx(-0.01)


def test_teacher_sees_the_nearest_uncollected_box_first():
    env = CollectHealthVecEnv(1, seed=0)
    boxes = [[-3.0, -3.0], [0.0, 2.0], [3.0, 3.0], [0.0, -1.0], [-3.0, 0.0]]
    _place(env, [0.0, 0.0], E, boxes, collected=[False, False, False, True, False])
    obs, *_ = env.step([E])  # now at (0.3, 0): distances 4.6, 2.0, 4.0, -, 3.3
    slots = obs["teacher"][0, 4:].reshape(NUM_BOXES, 3)
    expected = [[0.0, 2.0], [-3.0, 0.0], [3.0, 3.0], [-3.0, -3.0]]
    np.testing.assert_allclose(slots[:4, :2], (np.array(expected) - [0.3, 0.0]) / ROOM_HALF,
                               atol=1e-6)
    np.testing.assert_array_equal(slots[:, 2], [0, 0, 0, 0, 1])
    np.testing.assert_array_equal(slots[4], [0.0, 0.0, 1.0])


def test_wall_collision_ends_the_episode_with_the_penalty():
    env = CollectHealthVecEnv(1, seed=0)
    for pos, action in [([0.0, 3.55], N), ([3.7, 0.0], NE), ([-3.6, -3.6], SW),
                        ([0.0, -3.55], S), ([-3.55, 1.0], W)]:
        _place(env, pos, N)
        _, r, term, trunc, info = env.step([action])
        assert r[0] == pytest.approx(-1.01) and term[0] and not trunc[0]
        np.testing.assert_array_equal(info["final_trace"][0, :2], pos)  # did not move
        episode = info["episode"]
        assert episode["collision"][0] and not episode["success"][0]
        assert episode["boxes"][0] == 0 and episode["l"][0] == 1
    _place(env, [0.0, 3.45], N)  # to 3.75 m: body 0.05 m from the wall, no collision
    _, r, term, _, _ = env.step([N])
    assert not term[0] and env.pos[0, 1] == pytest.approx(3.75)


def test_scripted_privileged_policy_collects_everything_without_looking():
    env = CollectHealthVecEnv(50, seed=21)
    env.set_student_mask(np.zeros(50, dtype=bool))
    result = _first_episodes(env, _greedy)
    assert result["success"].mean() >= 0.98  # 1.0 on these seeds
    np.testing.assert_array_equal(result["boxes"][result["success"] == 1], NUM_BOXES)
    assert result["collision"].sum() == 0 and result["turns"].sum() == 0
    # Reward: 5 boxes minus 0.01 per step.
    np.testing.assert_allclose(result["r"], 5 - 0.01 * result["l"], atol=1e-4)
    assert 20 <= result["l"].mean() <= 70  # about 40 steps
    # The teacher walks to boxes it does not see; looking first keeps a box in view.
    env = CollectHealthVecEnv(50, seed=21)
    env.set_student_mask(np.zeros(50, dtype=bool))
    looker = _first_episodes(env, _look_then_move)
    assert looker["success"].mean() >= 0.98 and looker["turns"].mean() > 3
    assert result["box_in_view"].mean() < 0.6 < 0.9 < looker["box_in_view"].mean()


def test_camera_sees_box_ahead_not_behind_and_not_once_collected():
    env = CollectHealthVecEnv(1, seed=0)
    hidden = [False, True, True, True, True]
    _place(env, [0.0, 0.0], N, [[0.0, -2.5], *CORNER_BOXES[1:]], hidden)  # box behind
    image = env.observe()["student"]["image"][0]
    assert _red(image).sum() == 0  # walls and floor are not red either
    for _ in range(4):  # turn 180 degrees
        obs, *_ = env.step([RIGHT])
    red = _red(obs["student"]["image"][0])
    assert red.sum() > 10 and red[:, 28:36].any() and not red[:, :20].any()
    assert obs["student"]["image"][0, 0].mean() > 200  # row 0 is the top: above the walls
    # Straight ahead at 0.79 m: large; one move collects it and it disappears (the other
    # boxes stand behind the agent, so the episode goes on and nothing red is in view).
    behind = [[-3.0, -3.0], [-3.0, 3.0], [-3.0, 0.0], [-1.5, -3.0]]
    _place(env, [1.0, 1.0], E, [[1.79, 1.0], *behind])
    red = _red(env.observe()["student"]["image"][0])
    assert red.sum() > 150 and red[44:64, 24:40].all() and not red[:32].any()
    obs, r, term, _, _ = env.step([E])
    assert r[0] == pytest.approx(0.99) and not term[0]
    assert _red(obs["student"]["image"][0]).sum() == 0
    # Anywhere, also right above the room centre and the old floor-grid vertices (a mesh
    # vertex straight below the eye hangs the TinyRenderer), with boxes hidden or not.
    spots = [[0.0, 0.0], [2.0, 2.0], [-2.0, 0.0], [0.2, 0.2], [3.8, -3.8]]
    for collected in (True, False):
        for spot in spots:
            _place(env, spot, N, [[-1.0, 3.0], *CORNER_BOXES[1:]], [collected] * NUM_BOXES)
            for _ in range(8):
                obs, *_ = env.step([RIGHT])
                assert obs["student"]["image"][0].any()
    # The other boxes are drawn again when they are not collected.
    _place(env, [-3.0, 2.0], S, CORNER_BOXES)  # the box at (-3, 0) 2 m ahead
    assert _red(env.observe()["student"]["image"][0])[:, 24:40].sum() > 10


def test_layouts_per_seed_env_and_episode():
    env = CollectHealthVecEnv(8, seed=11, time_limit=1)
    first = env.scene()
    for i in range(8):
        start, heading, boxes = sample_layout(layout_rng(11, i, 0))
        np.testing.assert_array_equal(first[i], boxes)
        np.testing.assert_array_equal(env.pos[i], start)
        assert env.heading[i] == heading
    assert len({b.tobytes() for b in first}) == 8
    np.testing.assert_array_equal(CollectHealthVecEnv(8, seed=11).scene(), first)
    assert not np.array_equal(CollectHealthVecEnv(8, seed=12).scene(), first)
    env.step(np.full(8, LEFT))  # time limit 1: every episode ends
    second = env.scene()
    for i in range(8):
        np.testing.assert_array_equal(second[i], sample_layout(layout_rng(11, i, 1))[2])
    env.reset(seed=11)  # reseeding restarts the episode sequence
    np.testing.assert_array_equal(env.scene(), first)
    # Batch-size independent: env 3 of the batch of 8 == reset_to(3) of one environment.
    one = CollectHealthVecEnv(1, seed=11, time_limit=1)
    obs, _ = one.reset_to(3)
    np.testing.assert_array_equal(one.scene()[0], first[3])
    np.testing.assert_array_equal(obs["teacher"][0], env.observe()["teacher"][3])
    one.step([LEFT])
    np.testing.assert_array_equal(one.scene()[0], second[3])
    one.reset_to(5, episode_index=1)
    np.testing.assert_array_equal(one.scene()[0], second[5])


def test_layouts_keep_their_distances():
    for k in range(300):
        start, heading, boxes = sample_layout(layout_rng(3, k, 0))
        assert 0 <= heading < 8 and boxes.shape == (NUM_BOXES, 2)
        assert (np.abs(start) <= ROOM_HALF - START_MARGIN).all()
        assert (np.abs(boxes) <= ROOM_HALF - BOX_MARGIN).all()
        assert (np.linalg.norm(boxes - start, axis=1) >= MIN_START_DISTANCE).all()
        gaps = np.linalg.norm(boxes[:, None] - boxes[None], axis=2)
        assert (gaps[~np.eye(NUM_BOXES, dtype=bool)] >= MIN_BOX_DISTANCE).all()


def test_state_dict_continues_exactly():
    env = CollectHealthVecEnv(6, seed=2, time_limit=30)
    env.set_student_mask(np.array([True, False] * 3))
    rng = np.random.default_rng(0)
    for _ in range(10):
        env.step(rng.integers(0, 10, 6))
    state = env.state_dict()
    actions = rng.integers(0, 10, (40, 6))
    first = [env.step(a) for a in actions]
    other = CollectHealthVecEnv(6, seed=99, time_limit=30)
    other.load_state_dict(state)
    second = [other.step(a) for a in actions]
    assert_same_steps(first, second)
    np.testing.assert_array_equal(env.scene(), other.scene())
    assert sum((t | u).sum() for _, _, t, u, _ in first) > 0  # autoresets drew new layouts


def test_validation_errors():
    env = CollectHealthVecEnv(2, seed=0)
    with pytest.raises(ValueError, match=r"actions are 0\.\.9"):
        env.step([0, 10])
    with pytest.raises(ValueError, match=r"actions are 0\.\.9"):
        env.step([-1, 0])
    with pytest.raises(ValueError, match="integers"):
        env.step([0.5, 1.0])
    with pytest.raises(ValueError, match="expected 2 actions"):
        env.step([0, 1, 2])
    with pytest.raises(ValueError, match="time_limit"):
        CollectHealthVecEnv(1, time_limit=0)
    with pytest.raises(ValueError, match="image_size"):
        CollectHealthVecEnv(1, image_size=4)
    with pytest.raises(ValueError, match="num_envs"):
        CollectHealthVecEnv(0)


def test_registry_and_gymnasium():
    assert TASKS["collect_health"] is CollectHealthVecEnv
    task = make_task("collect_health", num_envs=3, seed=4, time_limit=50)
    assert task.num_envs == 3 and task.time_limit == 50
    env = gym.make("sitt/CollectHealth-v0")
    from gymnasium.utils.env_checker import check_env

    check_env(env.unwrapped, skip_render_check=True)
    obs, _ = env.reset(seed=1)
    assert env.observation_space.contains(obs) and obs["student"]["image"].any()
    obs, r, term, trunc, info = env.step(LEFT)
    assert r == pytest.approx(-0.01) and not term
    env.close()
    vec = gym.make_vec("sitt/CollectHealth-v0", num_envs=4,
                       vectorization_mode="vector_entry_point")
    obs, _ = vec.reset(seed=0)
    assert obs["teacher"].shape == (4, TEACHER_DIM) and vec.observation_space.contains(obs)
    obs, r, term, trunc, info = vec.step(vec.action_space.sample())
    assert r.shape == (4,) and term.dtype == bool
    vec.close()
