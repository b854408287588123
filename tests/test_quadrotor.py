"""Quadrotor task: dynamics, layouts, collisions, camera, seeding, rewards, gymnasium API."""

import math

import gymnasium as gym
import numpy as np
import pytest
from env_checks import assert_same_steps

import sitt_training.envs  # noqa: F401  (registers sitt/Quadrotor-v0)
from sitt_training.envs import make_task
from sitt_training.envs.quadrotor import (
    BOUNDS_PENALTY,
    CONTROL_DT,
    CRASH_BASE,
    CRASH_PER_SPEED,
    PILLAR_SCALE,
    STATE_DIM,
    TEACHER_DIM,
    QuadrotorEnv,
    QuadrotorVecEnv,
)
from sitt_training.envs.quadrotor_camera import (
    MOUNT_QUATERNION_XYZW,
    MOUNT_ROTATION,
    PillarCamera,
    horizontal_fov_deg,
    intrinsics,
)
from sitt_training.envs.quadrotor_dynamics import (
    DEFAULT_PARAMS,
    QuadrotorModel,
    action_to_command,
    hover_state,
    quaternion_to_matrix,
    yaw_to_quaternion,
)
from sitt_training.envs.quadrotor_world import (
    BOX_HALF_XY,
    DRONE_RADIUS,
    MIN_PILLAR_DISTANCE,
    MIN_START_DISTANCE,
    NUM_PILLARS,
    PILLAR_RADIUS,
    ground_collision,
    out_of_box,
    pillar_collision,
    sample_layouts,
)

HIT = PILLAR_RADIUS + DRONE_RADIUS
FAR_AWAY = [[200.0, 200.0], [200.0, -200.0], [-200.0, 200.0]]  # beyond the camera's far


def fly(model, state, action, steps):
    thrust, rates = action_to_command(np.asarray(action, dtype=np.float64)[None])
    for _ in range(steps):
        model.step(state, thrust, rates)


# ----------------------------------------------------------------------------- dynamics
def test_action_map_and_hover_holds_altitude():
    thrust, rates = action_to_command(np.array([[0, 1, -1, 1], [-1, 0, 0, -1], [2, 0, 0, 0]]))
    g = DEFAULT_PARAMS.gravity
    np.testing.assert_allclose(thrust, [g, 0.0, 2 * g])  # actions are clipped to [-1, 1]
    np.testing.assert_allclose(rates, [[3, -3, 2], [0, 0, -2], [0, 0, 0]])
    model = QuadrotorModel()
    state = hover_state(np.array([[1.0, -2.0, 2.0]]), np.array([0.7]))
    fly(model, state, [0, 0, 0, 0], 100)  # 2 s
    assert abs(state.position[0, 2] - 2.0) < 0.05
    assert np.linalg.norm(state.position[0, :2] - [1.0, -2.0]) < 0.05


@pytest.mark.parametrize("axis, action", [(2, [0, 0, 0, 0.8]), (0, [0, 0.5, 0, 0])])
def test_body_rates_are_tracked(axis, action):
    model = QuadrotorModel()
    state = hover_state(np.array([[0.0, 0.0, 3.0]]), np.zeros(1))
    _, rates = action_to_command(np.array([action]))
    fly(model, state, action, 25)  # 0.5 s
    target = rates[0, axis]
    assert abs(state.angular_velocity[0, axis] - target) < 0.1 * abs(target)


def test_pitching_forward_accelerates_forward():
    yaw = 2.0
    model = QuadrotorModel()
    state = hover_state(np.array([[0.0, 0.0, 3.0]]), np.array([yaw]))
    fly(model, state, [0, 0, 0.3, 0], 5)  # positive pitch rate about body y: nose down
    fly(model, state, [0, 0, 0, 0], 20)
    heading = np.array([math.cos(yaw), math.sin(yaw), 0.0])
    assert state.velocity[0] @ heading > 0.2
    assert abs(np.cross(heading, state.velocity[0])[2]) < 0.02  # no sideways drift


def test_quaternion_helpers():
    rot = quaternion_to_matrix(yaw_to_quaternion(np.array([math.pi / 2])))[0]
    np.testing.assert_allclose(rot @ [1, 0, 0], [0, 1, 0], atol=1e-12)
    np.testing.assert_allclose(quaternion_to_matrix(MOUNT_QUATERNION_XYZW), MOUNT_ROTATION,
                               atol=1e-12)
    fx, fy, cx, cy = intrinsics(64, 64)
    assert fx == fy == pytest.approx(32 / math.tan(math.radians(40)))
    assert (cx, cy) == (31.5, 31.5) and horizontal_fov_deg(64, 64) == pytest.approx(80)


# ------------------------------------------------------------------- world and layouts
def test_collision_geometry():
    pillars = np.array([[[3.0, 4.0], *FAR_AWAY]])
    for offset, hit in ((-0.01, True), (0.01, False)):
        direction = np.array([0.6, -0.8])
        pos = np.array([[*(pillars[0, 0] + (HIT + offset) * direction), 2.0]])
        assert pillar_collision(pos, pillars)[0] == hit
    assert ground_collision(np.array([[0, 0, 0.14], [0, 0, 0.16]])).tolist() == [True, False]
    b = BOX_HALF_XY
    outside = out_of_box(np.array([[b + 0.01, 0, 2], [0, -b - 0.01, 2], [0, 0, 6.01],
                                   [b - 0.01, 0.01 - b, 5.99]]))
    assert outside.tolist() == [True, True, True, False]


def test_sampled_layouts_are_valid_and_blind_flight_hits_pillar_one():
    n = 2000
    command, start, yaw, pillars = sample_layouts(7, np.arange(n), np.zeros(n, dtype=int))
    speed = np.linalg.norm(command[:, :2], axis=1)
    assert (command[:, 2] == 0).all() and ((speed >= 1.0) & (speed <= 1.4)).all()
    assert ((start[:, 2] >= 1.5) & (start[:, 2] <= 2.5)).all()
    assert (np.abs(yaw) <= math.pi).all()
    assert not pillar_collision(start, pillars).any()
    assert not (ground_collision(start) | out_of_box(start)).any()
    assert (np.abs(pillars) < BOX_HALF_XY - PILLAR_RADIUS).all()
    rel = pillars - start[:, None, :2]
    assert (np.linalg.norm(rel, axis=2) >= MIN_START_DISTANCE).all()
    gaps = np.linalg.norm(pillars[:, :, None] - pillars[:, None], axis=3)
    gaps[:, np.arange(4), np.arange(4)] = np.inf
    assert (gaps >= MIN_PILLAR_DISTANCE).all()
    # The straight line along the command passes within the crash distance of pillar 1,
    # ahead of the start.
    d = command[:, :2] / speed[:, None]
    along = np.einsum("nk,nk->n", rel[:, 0], d)
    lateral = rel[:, 0, 0] * d[:, 1] - rel[:, 0, 1] * d[:, 0]
    assert ((along > 4.9) & (np.abs(lateral) < HIT)).all()


# ------------------------------------------------------------------------------- camera
def pillar_pixels(image):
    rgb = image.astype(int)
    return (rgb[..., 0] > 80) & (rgb[..., 0] > 1.8 * rgb[..., 1])


@pytest.fixture(scope="module")
def camera():
    cam = PillarCamera(64)
    yield cam
    cam.close()


def test_camera_sees_pillar_ahead_not_behind(camera):
    yaw = 0.8
    heading = np.array([math.cos(yaw), math.sin(yaw)])
    pos = np.array([[1.0, 2.0, 2.0]] * 2)
    rot = quaternion_to_matrix(yaw_to_quaternion(np.full(2, yaw)))
    ahead = np.array([pos[0, :2] + 4 * heading, *FAR_AWAY])
    behind = np.array([pos[0, :2] - 4 * heading, *FAR_AWAY])
    images = camera.render(pos, rot, np.stack([ahead, behind]))
    assert images.shape == (2, 64, 64, 3) and images.dtype == np.uint8
    front, back = pillar_pixels(images[0]), pillar_pixels(images[1])
    assert front[24:40, 24:40].mean() > 0.9
    assert back.sum() == 0
    # Row 0 is the top: sky above, the ground at the bottom of a level camera.
    assert images[1, 0].mean() > 200 and images[1, -1, :, 1].mean() < 200


# ------------------------------------------------------------------ environment basics
def test_spaces_and_student_mask():
    env = QuadrotorVecEnv(4, seed=0)
    assert env.single_observation_space["teacher"].shape == (TEACHER_DIM,)
    assert env.single_observation_space["student"]["state"].shape == (STATE_DIM,)
    env.set_student_mask(np.zeros(4, dtype=bool))
    env.reset(seed=0)
    env.step(np.zeros((4, 4)))
    assert env._camera is None, "teacher-only stepping must not create the renderer"

    rendered = []
    original = env.render_images
    env.render_images = lambda ids: rendered.append(ids.copy()) or original(ids)
    env.set_student_mask(np.array([True, False, True, False]))
    obs, *_ = env.step(np.zeros((4, 4)))
    assert [r.tolist() for r in rendered] == [[0, 2]]
    student = obs["student"]
    assert (student["image"][[1, 3]] == 0).all() and (student["state"][[1, 3]] == 0).all()
    assert (student["image"][[0, 2]] > 0).any(axis=(1, 2, 3)).all()
    np.testing.assert_array_equal(student["state"][[0, 2]], obs["teacher"][[0, 2], :STATE_DIM])
    env.close()


def test_command_frame_teacher_sees_the_same_world_turned():
    """teacher_frame="command": horizontal vectors turned so the command points along +x;
    the flight itself and the student's observation are untouched."""
    world = QuadrotorVecEnv(5, seed=2)
    turned = QuadrotorVecEnv(5, seed=2, teacher_frame="command")
    for env in (world, turned):
        env.set_student_mask(np.ones(5, dtype=bool))
    rng = np.random.default_rng(1)
    for _ in range(20):
        actions = rng.uniform(-0.3, 0.3, (5, 4)).astype(np.float32)
        obs_w, rew_w, *_ = world.step(actions)
        obs_c, rew_c, *_ = turned.step(actions)
        np.testing.assert_array_equal(rew_w, rew_c)
        np.testing.assert_array_equal(obs_w["student"]["state"], obs_c["student"]["state"])
        np.testing.assert_array_equal(obs_w["student"]["image"], obs_c["student"]["image"])
    yaw = np.arctan2(world.command[:, 1], world.command[:, 0])
    c, s = np.cos(yaw), np.sin(yaw)
    rot = np.stack([np.stack([c, s], 1), np.stack([-s, c], 1)], 1)  # world -> command frame
    tw, tc = obs_w["teacher"].astype(np.float64), obs_c["teacher"].astype(np.float64)
    speed = np.linalg.norm(world.command[:, :2], axis=1)
    np.testing.assert_allclose(tc[:, 3:6], np.stack([speed, 0 * speed, 0 * speed], 1),
                               atol=1e-6)
    # velocity, the attitude's two columns and the four pillar offsets, turned
    for start in (0, 6, 9, 20, 22, 24, 26):
        xy = np.einsum("nij,nj->ni", rot, tw[:, start:start + 2])
        np.testing.assert_allclose(tc[:, start:start + 2], xy, atol=1e-5)
    for start in (2, 5, 8, 11):  # z components
        np.testing.assert_array_equal(tc[:, start], tw[:, start])
    np.testing.assert_array_equal(tc[:, 12:20], tw[:, 12:20])  # rates, action, altitude
    with pytest.raises(ValueError, match="teacher_frame must be one of"):
        QuadrotorVecEnv(1, teacher_frame="body")
    world.close()
    turned.close()


def test_seeding_and_batch_size_independence():
    def rollout(seed, n, steps=50):
        env = QuadrotorVecEnv(n, seed=seed)
        env.set_student_mask(np.arange(n) == 0)
        obs, _ = env.reset(seed=seed)
        rng = np.random.default_rng(1)
        out = [obs]
        for _ in range(steps):
            out.append(env.step(rng.uniform(-1, 1, (n, 4)))[0])
        env.close()
        return out

    a, b = rollout(3, 2), rollout(3, 2)
    for oa, ob in zip(a, b, strict=True):
        np.testing.assert_array_equal(oa["teacher"], ob["teacher"])
        np.testing.assert_array_equal(oa["student"]["image"], ob["student"]["image"])
    assert not np.array_equal(QuadrotorVecEnv(2, seed=3).pillars(),
                              QuadrotorVecEnv(2, seed=4).pillars())
    small, large = QuadrotorVecEnv(2, seed=5), QuadrotorVecEnv(5, seed=5)
    for env in (small, large):
        env.set_student_mask(np.zeros(env.num_envs, dtype=bool))
    for _ in range(2):  # episode 0, then episode 1 of every env
        np.testing.assert_array_equal(small.pillars(), large.pillars()[:2])
        np.testing.assert_array_equal(small.observe()["teacher"], large.observe()["teacher"][:2])
        small.reset()
        large.reset()


def test_rewards_progress_and_crash_penalty_grows_with_speed():
    env = QuadrotorVecEnv(4, seed=0)
    env.set_student_mask(np.zeros(4, dtype=bool))
    env.reset(seed=0)
    d = env.command_velocity(np.arange(4))[:, :2]
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    yaw = np.arctan2(d[:, 1], d[:, 0])
    env.quaternion[:] = yaw_to_quaternion(yaw)
    env.pillar_xy[:] = np.array([[0.0, 200.0], *FAR_AWAY])
    env.position[:, :2] = 0.0
    env.velocity[:, :2] = d * np.array([[1.2], [-1.0], [0.0], [0.0]])
    # Envs 2 and 3 fly at 1 and 3 m/s into a pillar placed just ahead of them.
    for i, speed in ((2, 1.0), (3, 3.0)):
        env.pillar_xy[i, 0] = env.position[i, :2] + (HIT + 0.005) * d[i]
        env.velocity[i, :2] = speed * d[i]
    _, reward, terminated, _, infos = env.step(np.zeros((4, 4)))
    assert reward[0] > 0.01 and reward[1] < -0.01  # along vs against the command
    assert terminated.tolist() == [False, False, True, True]
    assert reward[3] < reward[2] < -CRASH_BASE
    assert infos["episode"]["crash_pillar"][2:].tolist() == [1, 1]
    assert infos["episode"]["success"][2:].tolist() == [0, 0]


def _crash_rewards(crash_scale: float) -> np.ndarray:
    """Rewards of one step in which env 0 flies into a pillar at 2 m/s, env 1 drops below
    the ground and env 2 flies on freely."""
    env = QuadrotorVecEnv(3, seed=0, crash_scale=crash_scale)
    env.set_student_mask(np.zeros(3, dtype=bool))
    env.pillar_xy[:] = np.array(FAR_AWAY[:1] * NUM_PILLARS)
    d = env.command_velocity(np.arange(3))[:, :2]
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    env.pillar_xy[0, 0] = env.position[0, :2] + (HIT + 0.005) * d[0]
    env.velocity[0, :2] = 2.0 * d[0]
    env.position[1, 2] = -0.01
    _, reward, terminated, _, _ = env.step(np.zeros((3, 4)))
    assert terminated.tolist() == [True, True, False]
    return reward


def test_crash_scale_multiplies_both_crash_penalties_and_nothing_else():
    base, tripled = _crash_rewards(1.0), _crash_rewards(3.0)
    # The crash terms triple; the rest of the step's reward (progress, rates) is the same.
    speed_term = CRASH_BASE + CRASH_PER_SPEED * 2.0  # the speed after the step, about 2 m/s
    assert tripled[0] - base[0] == pytest.approx(-2.0 * speed_term, abs=0.2)
    assert tripled[1] - base[1] == pytest.approx(-2.0 * BOUNDS_PENALTY, abs=1e-4)
    assert tripled[2] == base[2]
    with pytest.raises(ValueError, match="crash_scale"):
        QuadrotorVecEnv(1, crash_scale=-1.0)


def _facing_the_command_in_the_open(env: QuadrotorVecEnv) -> tuple[np.ndarray, np.ndarray]:
    """Every drone at the origin facing its command, pillars far away, no rendering;
    returns the commands' unit directions (xy) and speeds."""
    env.set_student_mask(np.zeros(env.num_envs, dtype=bool))
    d = env.command_velocity(np.arange(env.num_envs))[:, :2]
    speed = np.linalg.norm(d, axis=1)
    d /= speed[:, None]
    env.quaternion[:] = yaw_to_quaternion(np.arctan2(d[:, 1], d[:, 0]))
    env.pillar_xy[:] = np.array(FAR_AWAY[:1] * NUM_PILLARS)
    env.position[:, :2] = 0.0
    return d, speed


@pytest.mark.parametrize("weight", [0.0, 1.0])
def test_flying_faster_than_commanded_earns_nothing_and_costs_overspeed_weight(weight):
    env = QuadrotorVecEnv(3, seed=0, overspeed_weight=weight)
    d, speed = _facing_the_command_in_the_open(env)
    # Env 0 at the commanded speed, envs 1 and 2 at 2x and 3x.
    env.velocity[:, :2] = d * speed[:, None] * np.array([[1.0], [2.0], [3.0]])
    start = env.position[:, :2].copy()
    _, reward, _, _, _ = env.step(np.zeros((3, 4)))
    along = np.einsum("ij,ij->i", env.position[:, :2] - start, d)
    cap = speed * CONTROL_DT
    excess = np.maximum(along - cap, 0.0)
    assert excess[0] < 0.1 * cap[0] and excess[2] > excess[1] > 0.5 * cap[1]
    # Progress is capped (the faster two earn exactly the cap); beyond it, each metre costs
    # the weight. The other terms are the same for all three (to 1e-4).
    progress = np.minimum(along, cap)
    assert progress[1] == pytest.approx(cap[1]) and progress[2] == pytest.approx(cap[2])
    np.testing.assert_allclose(reward[1:] - reward[0],
                               progress[1:] - progress[0] - weight * (excess[1:] - excess[0]),
                               atol=1e-4)


@pytest.mark.parametrize("weight", [0.0, 0.5])
def test_flying_across_the_command_costs_lateral_weight_per_metre(weight):
    env = QuadrotorVecEnv(3, seed=0, lateral_weight=weight)
    d, speed = _facing_the_command_in_the_open(env)
    n = np.stack([-d[:, 1], d[:, 0]], axis=1)
    # All at the commanded speed along the command; env 1 also drifts 1 m/s to the left,
    # env 2 2 m/s to the right.
    env.velocity[:, :2] = d * speed[:, None] + n * np.array([[0.0], [1.0], [-2.0]])
    start = env.position[:, :2].copy()
    _, reward, _, _, _ = env.step(np.zeros((3, 4)))
    moved = env.position[:, :2] - start
    across = np.abs(np.einsum("ij,ij->i", moved, n))
    assert across[0] < 1e-3 and across[2] > 1.5 * across[1] > 0.015
    # Beside the progress along the command (drag slows the faster drones a little), each
    # sideways metre costs the weight; the other terms are the same for all three.
    progress = np.minimum(np.einsum("ij,ij->i", moved, d), speed * CONTROL_DT)
    np.testing.assert_allclose(reward[1:] - reward[0],
                               progress[1:] - progress[0] - weight * (across[1:] - across[0]),
                               atol=1e-4)
    with pytest.raises(ValueError, match="lateral_weight"):
        QuadrotorVecEnv(1, lateral_weight=-0.1)


@pytest.mark.parametrize("weight", [0.0, 0.3])
def test_time_off_the_commanded_line_costs_deviation_weight_per_metre_second(weight):
    env = QuadrotorVecEnv(3, seed=0, deviation_weight=weight)
    d, speed = _facing_the_command_in_the_open(env)
    n = np.stack([-d[:, 1], d[:, 0]], axis=1)
    # All fly the command; env 0 on its line, env 1 2 m left of it, env 2 3 m right.
    env.line_origin[:] = 0.0
    env.position[:, :2] = n * np.array([[0.0], [2.0], [-3.0]])
    env.velocity[:, :2] = d * speed[:, None]
    start = env.position[:, :2].copy()
    _, reward, _, _, _ = env.step(np.zeros((3, 4)))
    offset = np.abs(np.einsum("ij,ij->i", env.position[:, :2], n))
    np.testing.assert_allclose(offset, [0.0, 2.0, 3.0], atol=1e-6)
    # Beside the progress (the commands' speeds differ), each metre off the line costs the
    # weight per second; the other terms are the same for all three.
    progress = np.minimum(np.einsum("ij,ij->i", env.position[:, :2] - start, d),
                          speed * CONTROL_DT)
    np.testing.assert_allclose(reward[1:] - reward[0],
                               progress[1:] - progress[0]
                               - weight * (offset[1:] - offset[0]) * CONTROL_DT, atol=1e-5)
    # The episode summary reports the mean distance from the line so far.
    np.testing.assert_allclose(env._step(np.zeros((3, 4)))[3]["line_offset_m"],
                               (offset + env._line_offset()) / 2, rtol=1e-9)
    # The line is the start's: a reset puts the drone on it.
    env.reset(seed=1)
    np.testing.assert_allclose(env._line_offset(), 0.0, atol=1e-12)
    with pytest.raises(ValueError, match="deviation_weight"):
        QuadrotorVecEnv(1, deviation_weight=-1.0)


@pytest.mark.parametrize("frame", ["world", "command"])
def test_line_offset_obs_gives_the_teacher_its_signed_distance_from_the_line(frame):
    plain = QuadrotorVecEnv(3, seed=0, teacher_frame=frame)
    env = QuadrotorVecEnv(3, seed=0, teacher_frame=frame, line_offset_obs=True)
    assert env.single_observation_space["teacher"].shape == (TEACHER_DIM + 1,)
    assert env.single_observation_space["student"] == plain.single_observation_space["student"]
    d, _ = _facing_the_command_in_the_open(env)
    n = np.stack([-d[:, 1], d[:, 0]], axis=1)  # left of the command
    env.line_origin[:] = 0.0
    env.position[:, :2] = n * np.array([[0.0], [2.0], [-3.0]]) + 4.0 * d  # 4 m along it
    teacher = env.observe()["teacher"]
    np.testing.assert_allclose(teacher[:, -1] * PILLAR_SCALE, [0.0, 2.0, -3.0], atol=1e-5)
    plain.set_student_mask(np.zeros(3, dtype=bool))
    for attr in ("position", "velocity", "quaternion", "line_origin", "pillar_xy"):
        setattr(plain, attr, getattr(env, attr).copy())
    np.testing.assert_array_equal(teacher[:, :-1], plain.observe()["teacher"])


def test_layout_ranges_are_task_options():
    env = QuadrotorVecEnv(64, seed=5, other_pillar_along=[14.0, 20.0], other_pillar_lateral=7.0)
    d = env.command[:, :2] / np.linalg.norm(env.command[:, :2], axis=1, keepdims=True)
    n = np.stack([-d[:, 1], d[:, 0]], axis=1)
    rel = env.pillar_xy - env.line_origin[:, None, :]
    along, lateral = np.einsum("npk,nk->np", rel, d), np.einsum("npk,nk->np", rel, n)
    assert ((along[:, 1:] >= 14.0) & (along[:, 1:] <= 20.0)).all()
    assert (np.abs(lateral[:, 1:]) <= 7.0).mean() > 0.9  # widened only after many rejections
    assert (np.abs(lateral[:, 1:]) > 5.0).any()  # beyond the task's default +-5 m
    # The first pillar (on the path) and the start are drawn as before.
    plain = QuadrotorVecEnv(64, seed=5)
    np.testing.assert_array_equal(plain.pillar_xy[:, 0], env.pillar_xy[:, 0])
    np.testing.assert_array_equal(plain.position, env.position)
    for bad in ({"other_pillar_along": [5.0, 5.0]}, {"other_pillar_along": [1.0, 2.0, 3.0]},
                {"other_pillar_lateral": 0.0}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            QuadrotorVecEnv(1, **bad)


def test_ground_crash_and_perception_metrics():
    env = QuadrotorVecEnv(2, seed=2)
    env.set_student_mask(np.zeros(2, dtype=bool))
    d = env.command_velocity(np.arange(2))[:, :2]
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    yaw = np.arctan2(d[:, 1], d[:, 0]) + np.array([0.0, math.pi])  # env 1 looks backwards
    env.quaternion[:] = yaw_to_quaternion(yaw)
    env.velocity[:, :2] = d
    for _ in range(5):
        summary = env._step(np.zeros((2, 4)))[3]
    assert summary["velocity_angle_deg"][0] < 1.0 and summary["velocity_angle_deg"][1] > 179
    assert summary["obstacles_in_view"][0] >= 1  # pillar 1 is ahead on the path
    env.position[0, 2] = 0.16
    env.velocity[0] = [0.0, 0.0, -1.0]
    _, reward, terminated, _, infos = env.step(np.zeros((2, 4)))
    assert terminated[0] and reward[0] < -9.0 and infos["episode"]["crash_bounds"][0] == 1


def test_odometry_accessors():
    env = QuadrotorVecEnv(1, seed=0)
    env.quaternion[:] = yaw_to_quaternion(np.array([math.pi / 2]))
    env.velocity[:] = [0.0, 1.0, 0.5]
    odom = env.odometry(np.array([0]))
    np.testing.assert_allclose(odom["linear_velocity_body"], [[1.0, 0.0, 0.5]], atol=1e-12)
    assert odom["orientation_xyzw"].shape == (1, 4) and odom["position"].shape == (1, 3)
    trace = env.trace()
    assert trace.shape == (1, 5)
    np.testing.assert_allclose(trace[0, 3:], [0.0, 1.0], atol=1e-12)


def test_state_dict_continues_exactly():
    env = QuadrotorVecEnv(3, seed=11)
    env.set_student_mask(np.array([True, False, False]))
    rng = np.random.default_rng(0)
    falling = np.tile([-1.0, 0.0, 0.0, 0.0], (3, 1))  # free fall: crashes and resets inside
    for _ in range(10):
        env.step(falling + rng.normal(0, 0.1, (3, 4)))
    state = env.state_dict()
    actions = [falling + rng.normal(0, 0.1, (3, 4)) for _ in range(40)]
    expected = [env.step(a) for a in actions]
    assert env.episode_index.min() >= 2, "the window should include a reset"
    other = QuadrotorVecEnv(3, seed=99)
    other.load_state_dict(state)
    assert_same_steps(expected, [other.step(a) for a in actions])
    env.close()
    other.close()


def test_gymnasium_make_and_registry():
    env = gym.make("sitt/Quadrotor-v0")
    obs, _ = env.reset(seed=0)
    assert obs["student"]["image"].shape == (64, 64, 3)
    for _ in range(3):
        obs, reward, terminated, truncated, _ = env.step(env.action_space.sample())
    assert obs["teacher"].shape == (TEACHER_DIM,) and np.isfinite(reward)
    env.close()
    vec = make_task("quadrotor", num_envs=2, seed=0)
    assert isinstance(vec, QuadrotorVecEnv) and vec.num_envs == 2


def test_pillar_range_shortens_far_offsets_only() -> None:
    plain, ranged = QuadrotorVecEnv(2, seed=3), QuadrotorVecEnv(2, seed=3, pillar_range=6.0)
    for env in (plain, ranged):
        env.position[:, :2] = 0.0
        env.pillar_xy[:] = np.array([[3.0, 0.0], [0.0, -5.0], [12.0, 0.0], [-9.0, 12.0]])
    near = plain.observe()["teacher"][:, STATE_DIM:].reshape(2, NUM_PILLARS, 2)
    clipped = ranged.observe()["teacher"][:, STATE_DIM:].reshape(2, NUM_PILLARS, 2)
    # Nearest first: 3 m and 5 m are within range and unchanged; 12 m and 15 m become 6 m
    # in the same direction.
    np.testing.assert_allclose(clipped[:, :2], near[:, :2])
    np.testing.assert_allclose(np.linalg.norm(clipped[:, 2:], axis=2) * PILLAR_SCALE, 6.0,
                               rtol=1e-6)
    np.testing.assert_allclose(clipped[:, 3] / np.linalg.norm(clipped[:, 3], axis=1)[:, None],
                               [[-0.6, 0.8]] * 2, rtol=1e-6)
    with pytest.raises(ValueError, match="pillar_range"):
        QuadrotorVecEnv(1, pillar_range=-1.0)


def test_single_drone_env_passes_every_task_option_on() -> None:
    env = QuadrotorEnv(seed=1, overspeed_weight=2.0, teacher_frame="command",
                       crash_scale=3.0, pillar_range=7.0, lateral_weight=0.5,
                       deviation_weight=0.2, other_pillar_along=(4, 9), other_pillar_lateral=6)
    vec = env.vec
    assert (vec.overspeed_weight, vec.teacher_frame, vec.crash_scale, vec.pillar_range,
            vec.lateral_weight, vec.deviation_weight, vec.other_pillar_along,
            vec.other_pillar_lateral) == (2.0, "command", 3.0, 7.0, 0.5, 0.2, (4.0, 9.0), 6.0)
    with pytest.raises(TypeError, match="lateral_wieght"):
        QuadrotorEnv(seed=1, lateral_wieght=0.5)  # a misspelt option is named
    env.close()
