"""Vision-based quadrotor obstacle avoidance (SITT paper, quadrotor task).

A drone must follow a horizontal velocity command through a box with four pillars; the
first pillar stands on the commanded straight line. The teacher knows where the pillars
are; the student sees them only in a 64x64 forward camera image.

Actions (4, in [-1, 1]): mass-normalised collective thrust g (1 + a0) and body rates
a1..a3 * (3, 3, 2) rad/s (see ``quadrotor_dynamics``). Control at 50 Hz, 1000 steps.

Observations:

* ``student``: ``{"image": uint8 (H, W, 3), "state": float32 (20,)}`` with the state laid
  out by ``STUDENT_STATE_FIELDS``: linear velocity (world, 3), command velocity (world, 3),
  first two columns of the body->world rotation matrix (6), body rates (3), previous
  action (4), altitude (1).
* ``teacher``: float32 (28,) = the same 20 values, then the four pillar centres relative
  to the drone, (x, y) in the world frame divided by ``PILLAR_SCALE`` m, nearest first.
  With ``pillar_range`` > 0 an offset longer than that many metres is shortened to it
  (direction kept): every far pillar then looks the same to the teacher.

Rewards per control step (the SITT paper's terms): progress along the command direction
(capped at the commanded distance per step; each metre beyond the cap costs
``overspeed_weight``, so the drone follows the commanded speed instead of racing ahead),
each metre flown across the command (horizontally) costs ``lateral_weight`` (0: sideways
flight is free, so a teacher may swing wide around every pillar, a manoeuvre a student
can repeat without seeing them; bench/vision_ablation.py), each second spent off the
commanded line (the start's line along the command) costs ``deviation_weight`` per metre
of horizontal distance from it (0: off), penalties on action changes and body rates;
a pillar crash costs ``CRASH_BASE + CRASH_PER_SPEED * |v|`` and ends the episode, leaving
the box or touching the ground costs ``BOUNDS_PENALTY`` and ends it; ``crash_scale``
multiplies both (an experiment knob for the teacher, bench/teacher_recipes.py). An episode is a
success when it reaches ``EPISODE_STEPS`` (or the ``episode_steps`` given) without a crash
*and* has flown at least ``MIN_PROGRESS_FRACTION`` of the commanded distance along the
command: without the second condition, a drone that hovers in place for 20 s would count
as a success.

Layouts: the three pillars after the first are drawn ``other_pillar_along`` m ahead of the
start and up to ``other_pillar_lateral`` m to either side of the commanded line
(``quadrotor_world.sample_layout``; the defaults are the task's).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np

from .base import LayoutVecEnv, SingleTaskEnv
from .fields import ObsField, concat_fields, field_slices, fields_size
from .quadrotor_camera import (
    FAR,
    IMAGE_SIZE,
    MOUNT_QUATERNION_XYZW,
    MOUNT_TRANSLATION,
    NEAR,
    VFOV_DEG,
    PillarCamera,
    horizontal_fov_deg,
    intrinsics,
)
from .quadrotor_dynamics import (
    ACTION_NAMES,
    ACTION_OFFSET,
    ACTION_SCALE,
    ACTION_UNITS,
    DEFAULT_PARAMS,
    HOVER_ACTION,
    QuadrotorModel,
    QuadState,
    action_to_command,
    quaternion_to_matrix,
    yaw_to_quaternion,
)
from .quadrotor_views import sample_views, view_scans
from .quadrotor_world import (
    NUM_PILLARS,
    OTHER_PILLAR_ALONG,
    OTHER_PILLAR_LATERAL,
    ground_collision,
    out_of_box,
    pillar_collision,
    pillars_in_view,
    sample_layouts,
)

EPISODE_STEPS = 1000  # 20 s at 50 Hz
CONTROL_DT = DEFAULT_PARAMS.control_dt

PROGRESS_WEIGHT = 1.0  # per metre flown along the command direction
# Per metre flown along the command beyond the commanded distance of the step. Not in the
# paper's formula as printed; without it teachers flew at 2-3x the command, crashed into
# pillars at that speed and left the box (docs/quadrotor_tuning.md).
OVERSPEED_WEIGHT = 1.0
ACTION_CHANGE_WEIGHT = 0.002  # times ||a_t - a_{t-1}||^2
BODY_RATE_WEIGHT = 0.001  # times ||w||^2 (rad/s)^2
CRASH_BASE = 2.0  # pillar crash: -(CRASH_BASE + CRASH_PER_SPEED * |v|)
CRASH_PER_SPEED = 4.0  # per m/s
BOUNDS_PENALTY = 10.0  # ground or leaving the box
MIN_PROGRESS_FRACTION = 0.5  # of speed * 20 s, for a success

PILLAR_SCALE = 5.0  # m, teacher pillar offsets are divided by this
# Perception metrics: the velocity-to-camera angle counts only steps moving faster than
# this; an episode without such a step reports NO_MOTION_ANGLE_DEG (the angle is undefined,
# and 90 degrees means "no evidence the camera looked where the drone flew").
MIN_SPEED_FOR_ANGLE = 0.2  # m/s
NO_MOTION_ANGLE_DEG = 90.0
HALF_HFOV = math.radians(horizontal_fov_deg()) / 2.0

STUDENT_STATE_FIELDS = [
    ObsField("linear_velocity", 3, "m/s", "world (ENU)", "drone velocity",
             "odometry", "twist.twist.linear", "rotate_body_to_world"),
    ObsField("command_velocity", 3, "m/s", "world (ENU)", "commanded horizontal velocity",
             "command", "twist.linear", "none"),
    ObsField("rotation_xy", 6, "1", "body->world", "R[:,0] then R[:,1] of the attitude",
             "odometry", "pose.pose.orientation", "rotation_matrix_columns_xy"),
    ObsField("angular_velocity", 3, "rad/s", "body (FLU)", "body rates",
             "odometry", "twist.twist.angular", "none"),
    ObsField("previous_action", 4, "1", "-", "last normalised action (zeros at start)",
             "previous_action", "", "none"),
    ObsField("altitude", 1, "m", "world z", "height above the ground",
             "odometry", "pose.pose.position.z", "none"),
]
STATE_DIM = fields_size(STUDENT_STATE_FIELDS)  # 20
_SLICES = field_slices(STUDENT_STATE_FIELDS)
# The teacher's frame for horizontal vectors: "world" (the student's), or "command" (the
# command along +x; see QuadrotorVecEnv._in_command_frame).
TEACHER_FRAMES = ("world", "command")
TEACHER_DIM = STATE_DIM + 2 * NUM_PILLARS  # 28


class QuadrotorVecEnv(LayoutVecEnv):
    """Batched drones. Episode ``k`` of environment ``i`` uses the layout drawn from
    ``(seed, i, k)``, so results for a seed do not depend on the batch size.
    ``reset_to`` starts a drone in another environment's layout (the sim bridge flies
    evaluation environment ``k`` with one drone). ``episode_steps`` shortens episodes
    (tests, benchmarks); the task's own length is ``EPISODE_STEPS``."""

    _state_attrs = (
        "position", "velocity", "quaternion", "angular_velocity", "rotor_thrust",
        "command", "line_origin", "pillar_xy", "prev_action", "steps",
        "angle_sum", "angle_count", "pillars_seen", "progress", "offset_sum",
    )

    def __init__(self, num_envs: int = 1, seed: int = 0, image_size: int = IMAGE_SIZE,
                 episode_steps: int = EPISODE_STEPS,
                 overspeed_weight: float = OVERSPEED_WEIGHT,
                 teacher_frame: str = "world", crash_scale: float = 1.0,
                 pillar_range: float = 0.0, lateral_weight: float = 0.0,
                 deviation_weight: float = 0.0,
                 other_pillar_along: Sequence[float] = OTHER_PILLAR_ALONG,
                 other_pillar_lateral: float = OTHER_PILLAR_LATERAL,
                 line_offset_obs: bool = False) -> None:
        if episode_steps < 1:
            raise ValueError(f"episode_steps must be >= 1, got {episode_steps}")
        if not overspeed_weight >= 0:
            raise ValueError(f"overspeed_weight must be >= 0, got {overspeed_weight}")
        if not crash_scale >= 0:
            raise ValueError(f"crash_scale must be >= 0, got {crash_scale}")
        if not lateral_weight >= 0:
            raise ValueError(f"lateral_weight must be >= 0, got {lateral_weight}")
        if not deviation_weight >= 0:
            raise ValueError(f"deviation_weight must be >= 0, got {deviation_weight}")
        along = tuple(float(v) for v in other_pillar_along)
        if len(along) != 2 or not 0 <= along[0] < along[1]:
            raise ValueError("other_pillar_along must be [min, max] m ahead with 0 <= min < "
                             f"max, got {other_pillar_along!r}")
        if not other_pillar_lateral > 0:
            raise ValueError(f"other_pillar_lateral must be > 0 m, got {other_pillar_lateral}")
        if not pillar_range >= 0:
            raise ValueError(f"pillar_range must be >= 0 (0: no limit), got {pillar_range}")
        if teacher_frame not in TEACHER_FRAMES:
            raise ValueError(f"teacher_frame must be one of {TEACHER_FRAMES}, got "
                             f"{teacher_frame!r}")
        self.overspeed_weight = float(overspeed_weight)
        self.crash_scale = float(crash_scale)
        self.lateral_weight = float(lateral_weight)
        self.deviation_weight = float(deviation_weight)
        self.other_pillar_along = along
        self.other_pillar_lateral = float(other_pillar_lateral)
        self.pillar_range = float(pillar_range)
        self.teacher_frame = teacher_frame
        # The teacher also observes its signed distance from the commanded line (what
        # deviation_weight charges; without it the teacher can only guess the line from
        # the pillars, since the first one stands within 1 m of it).
        self.line_offset_obs = bool(line_offset_obs)
        teacher_dim = TEACHER_DIM + int(self.line_offset_obs)
        teacher_space = gym.spaces.Box(-np.inf, np.inf, (teacher_dim,), np.float32)
        student_space = gym.spaces.Dict({
            "image": gym.spaces.Box(0, 255, (image_size, image_size, 3), np.uint8),
            "state": gym.spaces.Box(-np.inf, np.inf, (STATE_DIM,), np.float32),
        })
        action_space = gym.spaces.Box(-1.0, 1.0, (4,), np.float32)
        super().__init__(num_envs, teacher_space, student_space, action_space)
        self.image_size = image_size
        self.episode_steps = int(episode_steps)
        self.model = QuadrotorModel(DEFAULT_PARAMS)
        n = num_envs
        self.position = np.zeros((n, 3))
        self.velocity = np.zeros((n, 3))
        self.quaternion = np.zeros((n, 4))
        self.angular_velocity = np.zeros((n, 3))
        self.rotor_thrust = np.zeros((n, 4))
        self.command = np.zeros((n, 3))  # world velocity command
        self.line_origin = np.zeros((n, 2))  # start xy: the commanded line passes through it
        self.pillar_xy = np.zeros((n, NUM_PILLARS, 2))
        self.prev_action = np.zeros((n, 4))
        self.steps = np.zeros(n, dtype=np.int64)
        self.angle_sum = np.zeros(n)
        self.angle_count = np.zeros(n, dtype=np.int64)
        self.pillars_seen = np.zeros((n, NUM_PILLARS), dtype=bool)
        self.progress = np.zeros(n)  # m flown along the command (capped per step)
        self.offset_sum = np.zeros(n)  # m, distance from the commanded line summed over steps
        self._camera: PillarCamera | None = None  # created on the first rendered image
        self._init_layouts(seed)
        self._reset_envs(np.arange(n))

    # ------------------------------------------------------------ public accessors
    def pillars(self) -> np.ndarray:
        """Current pillar centres ``(num_envs, 4, 2)``, world frame."""
        return self.pillar_xy.copy()

    def odometry(self, ids: np.ndarray) -> dict[str, np.ndarray]:
        """ROS-facing state of the given drones (twist in the body frame, as in
        ``nav_msgs/Odometry`` with child frame = body)."""
        rot = quaternion_to_matrix(self.quaternion[ids])
        return {
            "position": self.position[ids].copy(),
            "orientation_xyzw": self.quaternion[ids].copy(),
            "linear_velocity_body": np.einsum("nji,nj->ni", rot, self.velocity[ids]),
            "angular_velocity_body": self.angular_velocity[ids].copy(),
        }

    def command_velocity(self, ids: np.ndarray) -> np.ndarray:
        return self.command[ids].copy()

    def render_images(self, ids: np.ndarray) -> np.ndarray:
        """Camera images ``(n, H, W, 3)`` uint8 of the given drones."""
        if self._camera is None:
            self._camera = PillarCamera(self.image_size)
        return self._camera.render(self.position[ids], quaternion_to_matrix(self.quaternion[ids]),
                                   self.pillar_xy[ids])

    def pretraining_views(self, count: int, rng: np.random.Generator
                          ) -> tuple[np.ndarray, np.ndarray]:
        """``count`` camera images ``(N, H, W, 3)`` uint8 of random drone poses among fresh
        layouts drawn from ``rng`` (this task's pillar ranges), each labelled with its
        pillar scan ``(N, 16)`` in [0, 1] (``quadrotor_views``): what the student's image
        trunk is pretrained to read."""
        positions, rotations, pillars = sample_views(
            rng, count, self.other_pillar_along, self.other_pillar_lateral)
        if self._camera is None:
            self._camera = PillarCamera(self.image_size)
        images = self._camera.render(positions, rotations, pillars)
        return images, view_scans(positions, rotations, pillars)

    def scene(self) -> np.ndarray:
        """Pillar centres of the current episodes, for top-view plots."""
        return self.pillars()

    def policy_contract(self) -> dict[str, Any]:
        """The robot-specific part of the exported student's policy contract
        (``sitt_policy_node.contract``): what the state fields are and where they come from
        on ROS, the camera, and what the action means."""
        fx, fy, cx, cy = intrinsics(self.image_size, self.image_size)
        hfov = horizontal_fov_deg(self.image_size, self.image_size)
        return {
            "task": "quadrotor",
            "robot_kind": "quadrotor",
            "control_rate_hz": 1.0 / CONTROL_DT,
            "camera": {
                "width": self.image_size, "height": self.image_size, "encoding": "rgb8",
                "fov_deg": {"horizontal": hfov, "vertical": VFOV_DEG},
                "intrinsics": {"fx": fx, "fy": fy, "cx": cx, "cy": cy},
                "mount": {"parent_frame": "base_link", "frame_id": "camera_optical_frame",
                          "translation": MOUNT_TRANSLATION.tolist(),
                          "rotation_xyzw": MOUNT_QUATERNION_XYZW.tolist()},
                "near": NEAR, "far": FAR,
            },
            "state_fields": [f.to_dict() for f in STUDENT_STATE_FIELDS],
            "action": {
                "names": list(ACTION_NAMES), "units": list(ACTION_UNITS),
                "low": [-1.0] * 4, "high": [1.0] * 4,
                "scale": ACTION_SCALE.tolist(), "offset": ACTION_OFFSET.tolist(),
                "meaning": "mass-normalised collective thrust along body z and body rates "
                           "(roll, pitch, yaw) in the body frame (FLU); physical value = "
                           "offset + scale * action",
                "safe": HOVER_ACTION.tolist(),
            },
            "ros": {
                "odometry": {"topic": "odom", "type": "nav_msgs/msg/Odometry",
                             "frames": "header: world (ENU); child: base_link (FLU)"},
                "command": {"topic": "cmd_vel", "type": "geometry_msgs/msg/TwistStamped",
                            "frames": "world (ENU)"},
                "camera": {"topic": "camera/image_raw", "type": "sensor_msgs/msg/Image"},
                "action": {"topic": "cmd_rates_thrust",
                           "type": "geometry_msgs/msg/TwistStamped",
                           "layout": "twist.angular = body rates [rad/s], twist.linear.z = "
                                     "mass-normalised collective thrust [m/s^2]"},
            },
        }

    def trace(self) -> np.ndarray:
        """Per env ``[x, y, z, camera_axis_x, camera_axis_y]`` (axis: unit ground projection)."""
        axis = quaternion_to_matrix(self.quaternion)[:, :2, 0]
        axis = axis / np.maximum(np.linalg.norm(axis, axis=1, keepdims=True), 1e-9)
        return np.concatenate([self.position, axis], axis=1)

    def close_extras(self, **kwargs: object) -> None:
        if self._camera is not None:
            self._camera.close()
            self._camera = None

    # ----------------------------------------------------------------- task hooks
    def _reset_envs(self, env_ids: np.ndarray) -> None:
        if env_ids.size == 0:
            return
        command, start, yaw, pillars = sample_layouts(
            *self._next_episodes(env_ids), self.other_pillar_along, self.other_pillar_lateral)
        self.command[env_ids] = command
        self.line_origin[env_ids] = start[:, :2]
        self.pillar_xy[env_ids] = pillars
        self.position[env_ids] = start
        self.velocity[env_ids] = 0.0
        self.quaternion[env_ids] = yaw_to_quaternion(yaw)
        self.angular_velocity[env_ids] = 0.0
        self.rotor_thrust[env_ids] = DEFAULT_PARAMS.hover_rotor_thrust
        self.prev_action[env_ids] = 0.0
        self.steps[env_ids] = 0
        self.angle_sum[env_ids] = 0.0
        self.angle_count[env_ids] = 0
        self.pillars_seen[env_ids] = False
        self.progress[env_ids] = 0.0
        self.offset_sum[env_ids] = 0.0

    def _step(
        self, actions: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, np.ndarray]]:
        actions = np.clip(np.asarray(actions, dtype=np.float64).reshape(self.num_envs, 4),
                          -1.0, 1.0)
        start_xy = self.position[:, :2].copy()
        thrust, rates = action_to_command(actions)
        self.model.step(QuadState(self.position, self.velocity, self.quaternion,
                                  self.angular_velocity, self.rotor_thrust), thrust, rates)

        hit_pillar = pillar_collision(self.position, self.pillar_xy)
        hit_bounds = (ground_collision(self.position) | out_of_box(self.position)) & ~hit_pillar
        speed = np.sqrt(np.einsum("ij,ij->i", self.velocity, self.velocity))
        progress, overspeed, lateral = self._progress(start_xy)
        self.progress += progress
        offset = self._line_offset()
        self.offset_sum += offset
        reward = (PROGRESS_WEIGHT * progress
                  - self.overspeed_weight * overspeed
                  - self.lateral_weight * lateral
                  - self.deviation_weight * offset * CONTROL_DT
                  - ACTION_CHANGE_WEIGHT * _sq_norm(actions - self.prev_action)
                  - BODY_RATE_WEIGHT * _sq_norm(self.angular_velocity)
                  - self.crash_scale * (hit_pillar * (CRASH_BASE + CRASH_PER_SPEED * speed)
                                        + hit_bounds * BOUNDS_PENALTY))
        self._update_perception_metrics()
        self.prev_action = actions
        self.steps += 1

        terminated = hit_pillar | hit_bounds
        truncated = (self.steps >= self.episode_steps) & ~terminated
        commanded = np.linalg.norm(self.command, axis=1) * self.episode_steps * CONTROL_DT
        progress_fraction = self.progress / commanded
        summary = {
            "success": (truncated & (progress_fraction >= MIN_PROGRESS_FRACTION)
                        ).astype(np.float64),
            "progress_fraction": progress_fraction,
            "crash_pillar": hit_pillar.astype(np.float64),
            "crash_bounds": hit_bounds.astype(np.float64),
            "velocity_angle_deg": np.where(
                self.angle_count > 0, self.angle_sum / np.maximum(self.angle_count, 1),
                NO_MOTION_ANGLE_DEG),
            "obstacles_in_view": self.pillars_seen.sum(axis=1).astype(np.float64),
            # How closely the flight kept to the commanded line (a blind student can copy
            # wide swings, not tight dodges: bench/vision_ablation.py).
            "line_offset_m": self.offset_sum / self.steps,
        }
        return reward.astype(np.float32), terminated, truncated, summary

    def _progress(self, start_xy: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Metres flown along the command direction this step, capped at the commanded
        distance per step (flying faster than commanded earns nothing more), the metres
        beyond that cap, and the metres flown across the command (horizontal, unsigned)."""
        cmd_xy = self.command[:, :2]
        cmd_speed = np.sqrt(np.einsum("ij,ij->i", cmd_xy, cmd_xy))
        moved = self.position[:, :2] - start_xy
        along = np.einsum("ij,ij->i", moved, cmd_xy) / cmd_speed
        across = np.abs(moved[:, 0] * cmd_xy[:, 1] - moved[:, 1] * cmd_xy[:, 0]) / cmd_speed
        cap = cmd_speed * CONTROL_DT
        return np.minimum(along, cap), np.maximum(along - cap, 0.0), across

    def _signed_line_offset(self) -> np.ndarray:
        """Horizontal distance (m) of each drone from its commanded line, positive to the
        left of the command."""
        cmd_xy = self.command[:, :2]
        rel = self.position[:, :2] - self.line_origin
        return ((rel[:, 1] * cmd_xy[:, 0] - rel[:, 0] * cmd_xy[:, 1])
                / np.sqrt(np.einsum("ij,ij->i", cmd_xy, cmd_xy)))

    def _line_offset(self) -> np.ndarray:
        """Horizontal distance (m) of each drone from its commanded line."""
        return np.abs(self._signed_line_offset())

    def _update_perception_metrics(self) -> None:
        rot = quaternion_to_matrix(self.quaternion)
        axis = rot[:, :, 0]  # camera optical axis = body x
        vel_xy = self.velocity[:, :2]
        axis_norm = np.sqrt(np.einsum("ij,ij->i", axis[:, :2], axis[:, :2]))
        speed_xy = np.sqrt(np.einsum("ij,ij->i", vel_xy, vel_xy))
        moving = (speed_xy > MIN_SPEED_FOR_ANGLE) & (axis_norm > 1e-6)
        cos = np.einsum("ij,ij->i", axis[:, :2], vel_xy) / np.maximum(axis_norm * speed_xy, 1e-9)
        angle = np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))
        self.angle_sum += np.where(moving, angle, 0.0)
        self.angle_count += moving
        eye = self.position + rot @ MOUNT_TRANSLATION
        self.pillars_seen |= pillars_in_view(eye, axis, self.pillar_xy, HALF_HFOV, FAR)

    def _state_vector(self, ids: np.ndarray | slice) -> np.ndarray:
        rot = quaternion_to_matrix(self.quaternion[ids])
        return concat_fields(STUDENT_STATE_FIELDS, {
            "linear_velocity": self.velocity[ids],
            "command_velocity": self.command[ids],
            "rotation_xy": np.concatenate([rot[:, :, 0], rot[:, :, 1]], axis=1),
            "angular_velocity": self.angular_velocity[ids],
            "previous_action": self.prev_action[ids],
            "altitude": self.position[ids, 2:3],
        })

    def _teacher_obs(self) -> np.ndarray:
        rel = self.pillar_xy - self.position[:, None, :2]
        order = np.argsort(np.einsum("npk,npk->np", rel, rel), axis=1)
        rel = np.take_along_axis(rel, order[:, :, None], axis=1)
        if self.pillar_range > 0:
            dist = np.sqrt(np.einsum("npk,npk->np", rel, rel))[:, :, None]
            rel = rel * np.minimum(1.0, self.pillar_range / np.maximum(dist, 1e-9))
        state = self._state_vector(slice(None))
        if self.teacher_frame == "command":
            state, rel = self._in_command_frame(state, rel)
        pillars = (rel / PILLAR_SCALE).reshape(self.num_envs, -1).astype(np.float32)
        if self.line_offset_obs:
            offset = (self._signed_line_offset() / PILLAR_SCALE)[:, None].astype(np.float32)
            return np.concatenate([state, pillars, offset], axis=1)
        return np.concatenate([state, pillars], axis=1)

    def _in_command_frame(self, state: np.ndarray, rel: np.ndarray
                          ) -> tuple[np.ndarray, np.ndarray]:
        """The teacher's world-frame values turned about z so that the command points
        along +x: velocity, command, the attitude's first two columns and the pillar
        offsets. The task looks the same for every command heading then, so the teacher
        does not have to learn each heading separately. Body rates, previous action and
        altitude do not depend on the heading."""
        yaw = np.arctan2(self.command[:, 1], self.command[:, 0])
        c, s = np.cos(yaw)[:, None], np.sin(yaw)[:, None]

        def turn(xy: np.ndarray) -> np.ndarray:  # (n, k, 2), world -> command frame
            x, y = xy[..., 0], xy[..., 1]
            return np.stack([c * x + s * y, c * y - s * x], axis=-1)
        state = state.copy()
        for field in ("linear_velocity", "command_velocity", "rotation_xy"):
            vectors = state[:, _SLICES[field]].reshape(self.num_envs, -1, 3)
            vectors[..., :2] = turn(vectors[..., :2].astype(np.float64))
            state[:, _SLICES[field]] = vectors.reshape(self.num_envs, -1)
        return state, turn(rel)

    def _student_obs(self, env_ids: np.ndarray) -> dict[str, np.ndarray]:
        return {"image": self.render_images(env_ids), "state": self._state_vector(env_ids)}


def _sq_norm(x: np.ndarray) -> np.ndarray:
    return np.einsum("ij,ij->i", x, x)


class QuadrotorEnv(SingleTaskEnv):
    """A single drone for ``gymnasium.make("sitt/Quadrotor-v0")``."""

    def __init__(self, seed: int = 0, **task_options: Any) -> None:
        """``task_options``: any keyword of ``QuadrotorVecEnv`` (image size, episode length,
        reward weights, layout ranges), passed on unchanged."""
        super().__init__(QuadrotorVecEnv(1, seed=seed, **task_options))

    def close(self) -> None:
        self.vec.close()  # releases the pybullet renderer
