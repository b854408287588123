"""Vision-based drawer opening with a Franka Panda (SITT paper, manipulation task).

The arm must open the top drawer of a cabinet whose position is drawn per episode
(``arm_world``: +-0.15 m by +-0.1 m around a nominal place), and so is the handle's height
on the drawer front (+-``HANDLE_SHIFT_RANGE``, 0.06 m; ``handle_shift_range=0`` keeps it in
the middle, the paper's cabinet). The teacher knows where the handle is; the student
sees it only in a 64x64 camera image taken from beside the arm, where some arm poses hide
the handle, and nothing else in the image tells where it is.

Actions (8, in [-1, 1]): joint-position increments. ``a[0:7]`` move the targets of the
seven arm joints by up to ``ARM_SPEED * CONTROL_DT`` per step, ``a[7]`` moves both finger
targets by up to ``FINGER_SPEED * CONTROL_DT`` (positive opens). The targets integrate
the increments (the paper's "multi-step integration joint position" action space, as in
Isaac Gym's FrankaCabinet), clipped to the joint limits and to ``MAX_TARGET_LEAD`` from the
measured position so a blocked arm does not wind up; pybullet's position motors track
them. The zero action holds the arm (``SAFE_ACTION``). The integration is
``sitt_policy_node.integrators.JointTargetIntegrator`` (``INTEGRATOR``), the code the
deployed policy node runs to publish absolute joint targets; each episode's targets start
at the measured joint positions, as the node's do when the policy takes over.
``action_mode="targets"`` makes the environment take those absolute targets (9 values,
``JOINT_NAMES`` order) instead: the sim bridge applies what the node published, clamped by
the same code (a no-op for the node's targets), so HIL and in-process runs step the same
physics.

Why joint increments rather than end-effector deltas through IK: the SITT effect in this
task is the teacher choosing arm *poses* that keep the handle in view, which Cartesian
actions would hand to the IK solver (it picks the elbow), and a step costs one motor call
instead of an IK solve; the paper uses this action space. Untested here: whether
end-effector actions would learn faster.

Control at 30 Hz (120 Hz physics, 4 substeps), ``EPISODE_STEPS`` = 150 steps (5 s); the
scripted opener of ``arm_scripted`` (privileged, not tuned for speed) needs 90-115.

Observations:

* ``student``: ``{"image": uint8 (H, W, 3), "state": float32 (18,)}`` with the state laid
  out by ``STUDENT_STATE_FIELDS``: the nine joint positions (7 arm, 2 fingers) scaled to
  [-1, 1] between their limits, then their velocities (rad/s, m/s).
* ``teacher``: float32 (23,) = the same 18 values, then the vector from the grasp point
  (``panda_grasptarget``) to the handle centre (world frame, m), the drawer opening (m)
  and its speed (m/s), as in Isaac Gym's FrankaCabinet.

Rewards per step, each term <= 0 so that finishing early never pays less than dawdling
(the episode terminates on success), plus a success bonus:

* reach: ``-W_REACH * mean(tanh(d / REACH_SCALES))``, ``d`` the grasp point's distance to
  the handle centre: a fine scale for the last centimetres and a coarse one whose slope
  still pulls the hand back from a metre away (with the fine scale alone, the reward is
  flat beyond ~0.3 m, and a teacher that had drifted there never came back);
* align: ``W_ALIGN * (align - 1)``, ``align`` the mean of the approach axis along the
  drawer's inward direction and the finger axis along the vertical (the handle is a
  horizontal bar, gripped from above and below);
* grasp: ``-W_GRASP`` unless the fingers are closed on the handle (``grasped``);
* open: ``W_OPEN * (min(opening / SUCCESS_OPENING, 1) - 1)``;
* action: ``-W_ACTION * |a|^2``, ``a`` the increment the targets actually made, in action
  units (``INTEGRATOR.applied_action``): the commanded action unless a joint limit or the
  lead clamp cut it. Computed from the targets, what a robot receives, so the sim bridge
  (given targets, not actions) computes the same reward;
* success: ``SUCCESS_BONUS`` when the drawer is opened past ``SUCCESS_OPENING`` (0.39 of
  the 0.4 m travel, the paper's Isaac task), which ends the episode. With the task option
  ``success_needs_grasp`` the fingers must also hold the handle (``grasped``) at that
  moment: hooking the bar no longer counts, and a grip needs the handle's place to about
  2 cm, finer than a hook does. Opening without a grip then goes on to the time limit,
  unless ``hook_ends_episode`` ends it there too (without the bonus). As every other term
  is <= 0, an early end pays: under ``hook_ends_episode`` hooking the drawer open fast is
  the best a teacher can do short of a grip;
* close (only with the task option ``grip_reward``, which needs ``success_needs_grasp``):
  open fingers on the way, closed ones on the bar. With ``u`` in [0, 1] how open the
  fingers are (1: fully, 0: a gap of the bar's height), ``-W_CLOSE * u / 2`` while the
  grasp point is on the bar with the fingers vertical, ``-W_CLOSE * (1 - u / 2)``
  elsewhere: closed fingers short of the bar (a teacher's first habit: they cannot
  straddle it) cost the most, open ones the same on and off the bar, closing on it pays.
  The open term then pays only while the fingers hold the handle: a hooked or flicked
  drawer earns nothing, a grip and every centimetre pulled with it does.

Episode metrics (``infos["episode"]``, besides return, length and success):
``max_opening`` (m), ``max_drawer_speed`` (m/s, how hard the drawer was pulled),
``grasped_fraction`` (steps with the fingers closed on the handle) and ``handle_visible``
(see ``track_visibility``). By default success only asks for the opening, as in the paper:
a policy may hook the handle instead of gripping it, and these metrics show which it does.

Checkpoints: besides NumPy arrays, ``state_dict`` holds each world's full pybullet state
(``saveBullet`` bytes, contact caches included) as an object array, and resuming restores
it; ``tests/test_arm_drawer.py`` checks that a resumed run continues bit for bit.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np

from sitt_policy_node.integrators import JointTargetIntegrator

from .arm_world import (
    ARM_JOINT_NAMES,
    CABINET_YAW,
    CAMERA_EYE,
    CAMERA_TARGET,
    CAMERA_UP,
    CONTROL_DT,
    FAR,
    FINGER_OPEN,
    HANDLE_POST_Y,
    HANDLE_SHIFT_RANGE,
    HANDLE_SIZE,
    IMAGE_SIZE,
    JOINT_LOWER,
    JOINT_NAMES,
    JOINT_UPPER,
    NEAR,
    START_JOINTS,
    VFOV_DEG,
    ArmWorld,
    drawer_normal,
    handle_position,
    look_at_rotation,
    rotation_to_quaternion,
    sample_layout,
)
from .base import LayoutVecEnv, SingleTaskEnv
from .fields import ObsField, concat_fields, fields_size
from .quadrotor_camera import horizontal_fov_deg, intrinsics

EPISODE_STEPS = 150  # 5 s at 30 Hz
SUCCESS_OPENING = 0.39  # m, of DRAWER_TRAVEL

ARM_SPEED = 1.5  # rad/s: |a| = 1 moves an arm joint target this fast
FINGER_SPEED = 0.2  # m/s per finger (the Panda's limit)
ACTION_SCALE = np.array([ARM_SPEED * CONTROL_DT] * 7 + [FINGER_SPEED * CONTROL_DT])
ACTION_DIM = 8
SAFE_ACTION = np.zeros(ACTION_DIM)
MAX_TARGET_LEAD = 3 * ARM_SPEED * CONTROL_DT  # rad, arm targets stay this close to the joints
# The action -> joint target integration, shared with the policy node (one implementation).
INTEGRATOR = JointTargetIntegrator(
    joints=JOINT_NAMES,
    action_index=np.array([0, 1, 2, 3, 4, 5, 6, 7, 7]),  # a[7] moves both fingers
    step_scale=ACTION_SCALE,
    lower=JOINT_LOWER,
    upper=JOINT_UPPER,
    # Fingers: no lead clamp (closing on the handle must keep squeezing it).
    max_lead=np.array([MAX_TARGET_LEAD] * 7 + [np.inf, np.inf]),
)
ACTION_MODES = ("increments", "targets")
ACTION_NAMES = tuple(f"{name}_increment" for name in ARM_JOINT_NAMES) + ("gripper_increment",)
ACTION_UNITS = ("rad",) * 7 + ("m",)

W_REACH = 1.0
REACH_SCALES = np.array([0.1, 0.5])  # m: fine, coarse
W_ALIGN = 0.5
W_GRASP = 0.5
W_OPEN = 2.0
W_ACTION = 0.01
W_CLOSE = 1.0  # the grip_reward option's close term
SUCCESS_BONUS = 5.0
# A grasp: the grasp point within GRASP_RADIUS of the bar's axis (between the posts), the
# finger axis near vertical, and the fingers closed on the 2 cm bar: their gap is then
# about the bar's height (fully closed fingers held nothing).
GRASP_RADIUS = 0.02  # m
GRASP_GAP = (0.5 * HANDLE_SIZE[2], 1.5 * HANDLE_SIZE[2])  # m, finger gap q1 + q2
GRASP_FINGER_VERTICAL = 0.8
# Handle visibility (a perception metric): rays from the camera to these points on the bar,
# every VISIBILITY_EVERY steps of an episode (the first included): a ray test costs ~50 us
# per world when a batch of 16 worlds is cycled (cold caches), ~20% of a step if done every
# step.
VISIBILITY_POINTS = np.array([-0.06, 0.0, 0.06])  # m along the bar from its centre
VISIBILITY_EVERY = 4

# Joint positions -> [-1, 1]: (q - offset) * scale, the policy node's "scale_offset" in the
# same float64 operations, so both sides build bitwise the same state.
_OFFSET = (JOINT_LOWER + JOINT_UPPER) / 2.0
_SCALE = 2.0 / (JOINT_UPPER - JOINT_LOWER)
STUDENT_STATE_FIELDS = [
    ObsField("joint_position", 9, "1", "-",
             "joint positions (panda_joint1..7, then the two fingers) scaled to [-1, 1] "
             "between their limits", "joint_state", "position", "scale_offset",
             {"joints": list(JOINT_NAMES), "offset": _OFFSET.tolist(),
              "scale": _SCALE.tolist()}),
    ObsField("joint_velocity", 9, "rad/s (m/s for the fingers)", "-",
             "joint velocities, same order", "joint_state", "velocity", "none",
             {"joints": list(JOINT_NAMES)}),
]
STATE_DIM = fields_size(STUDENT_STATE_FIELDS)  # 18
TEACHER_DIM = STATE_DIM + 5  # + grasp-to-handle vector, drawer opening and speed


def camera_pose(eye: Sequence[float], target: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """The task options ``camera_eye`` and ``camera_target`` (m, world = robot base frame)
    as arrays; a clear error for a bad pose."""
    points = []
    for name, value in (("camera_eye", eye), ("camera_target", target)):
        point = np.asarray(value, dtype=np.float64)
        if point.shape != (3,) or not np.all(np.isfinite(point)):
            raise ValueError(f"{name} must be three finite numbers [x, y, z] in m, got {value!r}")
        points.append(point)
    axis = points[1] - points[0]
    if np.linalg.norm(np.cross(axis, CAMERA_UP)) < 1e-3 * max(np.linalg.norm(axis), 1e-9):
        raise ValueError(f"camera_target must not lie straight above or below camera_eye "
                         f"(or on it), got eye {eye!r} and target {target!r}")
    return points[0], points[1]


def start_pose(arm_joints: Sequence[float]) -> np.ndarray:
    """The task option ``start_joints`` (the seven arm joints' mean start positions, rad,
    ``ARM_JOINT_NAMES`` order) as the nine-joint start pose, fingers open; a clear error
    for a bad pose."""
    joints = np.asarray(arm_joints, dtype=np.float64)
    if joints.shape != (7,) or not np.all(np.isfinite(joints)):
        raise ValueError(f"start_joints must be seven finite joint positions in rad "
                         f"({', '.join(ARM_JOINT_NAMES)}), got {arm_joints!r}")
    outside = (joints < JOINT_LOWER[:7]) | (joints > JOINT_UPPER[:7])
    if outside.any():
        i = int(np.argmax(outside))
        raise ValueError(f"start_joints: {ARM_JOINT_NAMES[i]} = {joints[i]} rad is outside its "
                         f"limits [{JOINT_LOWER[i]}, {JOINT_UPPER[i]}]")
    return np.concatenate([joints, START_JOINTS[7:]])


class ArmDrawerVecEnv(LayoutVecEnv):
    """A batch of Panda-and-cabinet worlds, one pybullet client each.

    Episode ``k`` of environment ``i`` starts from the layout drawn from ``(seed, i, k)``
    (cabinet position, handle height, initial joints), so results for a seed do not depend
    on the batch size, and the physics of each world is restored to the same empty scene at
    every reset (bitwise-identical episodes for identical actions). ``episode_steps``
    shortens episodes (tests, benchmarks); ``handle_shift_range`` bounds the handle's height
    above or below the middle of the drawer front (m, ``arm_world.HANDLE_SHIFT_RANGE``);
    ``track_visibility`` (on by default) casts three rays every ``VISIBILITY_EVERY`` steps
    per environment for the ``handle_visible`` episode metric (the mean fraction of the
    handle the camera saw). ``camera_eye`` and ``camera_target`` (m, world) move the camera
    (default: ``arm_world.CAMERA_EYE`` and ``CAMERA_TARGET``); the policy contract carries
    the pose. ``start_joints`` (rad, seven arm joints) moves the start pose around which
    each episode's initial joints are drawn (default: ``arm_world.START_JOINTS``).
    ``action_mode="targets"``: actions are absolute joint targets ``(num_envs, 9)`` (the
    sim bridge; see the module docstring). ``success_needs_grasp``: an opened drawer counts
    (and ends the episode) only while the fingers hold its handle; with it,
    ``hook_ends_episode`` ends the episode at any opening, the bonus still only for a grip,
    and ``grip_reward`` adds the close term and pays the open term only during a grip.
    """

    # ~31 MB per pybullet world: evaluation flies its episodes 32 worlds at a time.
    max_eval_envs = 32

    _state_attrs = (
        "cabinet_xy", "handle_shift", "targets", "steps",
        "max_opening", "max_drawer_speed", "grasp_steps", "visible_sum", "visible_count",
        "joint_position",
        "joint_velocity", "drawer", "grasp_position", "grasp_rotation", "bullet_state",
    )

    def __init__(self, num_envs: int = 1, seed: int = 0, image_size: int = IMAGE_SIZE,
                 episode_steps: int = EPISODE_STEPS, track_visibility: bool = True,
                 action_mode: str = "increments",
                 handle_shift_range: float = HANDLE_SHIFT_RANGE,
                 camera_eye: Sequence[float] = tuple(CAMERA_EYE.tolist()),
                 camera_target: Sequence[float] = tuple(CAMERA_TARGET.tolist()),
                 start_joints: Sequence[float] = tuple(START_JOINTS[:7].tolist()),
                 success_needs_grasp: bool = False, hook_ends_episode: bool = False,
                 grip_reward: bool = False) -> None:
        if hook_ends_episode and not success_needs_grasp:
            raise ValueError("hook_ends_episode needs success_needs_grasp (without it every "
                             "opening is a success and ends the episode anyway)")
        if grip_reward and not success_needs_grasp:
            raise ValueError("grip_reward needs success_needs_grasp (without it a hooked "
                             "drawer still ends the episode with the success bonus)")
        self.camera_eye, self.camera_target = camera_pose(camera_eye, camera_target)
        self.start_joints = start_pose(start_joints)
        if episode_steps < 1:
            raise ValueError(f"episode_steps must be >= 1, got {episode_steps}")
        if action_mode not in ACTION_MODES:
            raise ValueError(f"action_mode must be one of {ACTION_MODES}, got {action_mode!r}")
        teacher_space = gym.spaces.Box(-np.inf, np.inf, (TEACHER_DIM,), np.float32)
        student_space = gym.spaces.Dict({
            "image": gym.spaces.Box(0, 255, (image_size, image_size, 3), np.uint8),
            "state": gym.spaces.Box(-np.inf, np.inf, (STATE_DIM,), np.float32),
        })
        if action_mode == "targets":
            action_space = gym.spaces.Box(JOINT_LOWER, JOINT_UPPER, dtype=np.float64)
        else:
            action_space = gym.spaces.Box(-1.0, 1.0, (ACTION_DIM,), np.float32)
        super().__init__(num_envs, teacher_space, student_space, action_space)
        self.action_mode = action_mode
        self.image_size = image_size
        self.episode_steps = int(episode_steps)
        self.track_visibility = bool(track_visibility)
        self.success_needs_grasp = bool(success_needs_grasp)
        self.hook_ends_episode = bool(hook_ends_episode)
        self.grip_reward = bool(grip_reward)
        n = num_envs
        self.worlds = [ArmWorld(image_size, self.camera_eye, self.camera_target)
                       for _ in range(n)]
        self.handle_shift_range = float(handle_shift_range)
        self.cabinet_xy = np.zeros((n, 2))
        self.handle_shift = np.zeros(n)  # m, handle height above the front's middle
        self.targets = np.zeros((n, 9))  # joint position targets of the motors
        self.steps = np.zeros(n, dtype=np.int64)
        self.max_opening = np.zeros(n)
        self.max_drawer_speed = np.zeros(n)
        self.grasp_steps = np.zeros(n, dtype=np.int64)
        self.visible_sum = np.zeros(n)
        self.visible_count = np.zeros(n, dtype=np.int64)
        # Read back from the worlds after every step (and reset).
        self.joint_position = np.zeros((n, 9))
        self.joint_velocity = np.zeros((n, 9))
        self.drawer = np.zeros((n, 2))  # opening [m], speed [m/s]
        self.grasp_position = np.zeros((n, 3))
        self.grasp_rotation = np.zeros((n, 3, 3))
        self._normal = drawer_normal(CABINET_YAW)
        self._bar_axis = np.array([-self._normal[1], self._normal[0], 0.0])
        self._init_layouts(seed)
        self._reset_envs(np.arange(n))

    # ------------------------------------------------------------ public accessors
    @property
    def bullet_state(self) -> np.ndarray:
        """Each world's full pybullet state as bytes, ``(num_envs,)`` object array."""
        out = np.empty(self.num_envs, dtype=object)
        for i, world in enumerate(self.worlds):
            out[i] = world.save_bytes()
        return out

    @bullet_state.setter
    def bullet_state(self, value: np.ndarray) -> None:
        for world, data, shift in zip(self.worlds, value, self.handle_shift, strict=True):
            world.load_bytes(bytes(data), float(shift))

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        # The worlds last: restoring them locks each handle at the loaded ``handle_shift``.
        super().load_state_dict({k: v for k, v in state.items() if k != "bullet_state"})
        if "bullet_state" in state:
            super().load_state_dict({"bullet_state": state["bullet_state"]})

    def joint_states(self, ids: np.ndarray) -> dict[str, Any]:
        """ROS-facing joint state of the given arms (``sensor_msgs/JointState`` order)."""
        return {"name": list(JOINT_NAMES), "position": self.joint_position[ids].copy(),
                "velocity": self.joint_velocity[ids].copy()}

    def sync(self, ids: np.ndarray | None = None) -> None:
        """Read the worlds' state again, after moving them directly (``ArmWorld.set_joints``,
        ``set_drawer``: tests, tools)."""
        for i in np.arange(self.num_envs) if ids is None else np.asarray(ids, dtype=np.int64):
            self._read(int(i))

    def handle_positions(self) -> np.ndarray:
        """Handle centres ``(num_envs, 3)``, world (= robot base) frame."""
        return handle_position(self.cabinet_xy, self.drawer[:, 0], self.handle_shift)

    def scripted_expert(self) -> Any:
        """The privileged scripted opener (``arm_scripted.ScriptedDrawerOpener``) for these
        environments, reading its phase from the state (``markov``), so it can label any
        state a learner reaches: demonstrations for ``train.teacher_demos``."""
        if self.action_mode != "increments":
            raise ValueError("the scripted opener acts in joint increments; this task's "
                             f"action_mode is {self.action_mode!r}")
        from .arm_scripted import ScriptedDrawerOpener  # it imports this module

        return ScriptedDrawerOpener(self, markov=True)

    def render_images(self, ids: np.ndarray) -> np.ndarray:
        """Camera images ``(n, H, W, 3)`` uint8 of the given environments."""
        images = np.empty((len(ids), self.image_size, self.image_size, 3), dtype=np.uint8)
        for k, i in enumerate(np.asarray(ids, dtype=np.int64)):
            images[k] = self.worlds[i].render()
        return images

    def handle_visibility(self, ids: np.ndarray | None = None) -> np.ndarray:
        """Fraction of ``VISIBILITY_POINTS`` on each handle that the camera sees."""
        ids = np.arange(self.num_envs) if ids is None else np.asarray(ids, dtype=np.int64)
        points = (self.handle_positions()[ids, None, :]
                  + VISIBILITY_POINTS[None, :, None] * self._bar_axis)
        # Aim 1 mm past each point along the ray, into the bar.
        rays = points - self.camera_eye
        points += 1e-3 * rays / np.linalg.norm(rays, axis=2, keepdims=True)
        rows = points.tolist()
        return np.array([self.worlds[i].handle_visible(rows[k]) for k, i in enumerate(ids)])

    def scene(self) -> np.ndarray:
        """Per env ``[cabinet x, y, handle shift]``: where the cabinet stands (floor below
        the carcass centre) and its handle's height above the drawer front's middle (m)."""
        return np.concatenate([self.cabinet_xy, self.handle_shift[:, None]], axis=1)

    def trace(self) -> np.ndarray:
        """Per env ``[grasp x, y, z, drawer opening]``."""
        return np.concatenate([self.grasp_position, self.drawer[:, :1]], axis=1)

    def camera_info(self) -> dict[str, Any]:
        """Pinhole model and mount of the camera (for ``sensor_msgs/CameraInfo`` and tf)."""
        fx, fy, cx, cy = intrinsics(self.image_size, self.image_size, VFOV_DEG)
        return {
            "width": self.image_size, "height": self.image_size, "encoding": "rgb8",
            "fov_deg": {"horizontal": horizontal_fov_deg(self.image_size, self.image_size,
                                                         VFOV_DEG),
                        "vertical": VFOV_DEG},
            "intrinsics": {"fx": fx, "fy": fy, "cx": cx, "cy": cy},
            "mount": {"parent_frame": "panda_link0", "frame_id": "camera_optical_frame",
                      "translation": self.camera_eye.tolist(),
                      "rotation_xyzw": rotation_to_quaternion(look_at_rotation(
                          self.camera_eye, self.camera_target, CAMERA_UP)).tolist()},
            "near": NEAR, "far": FAR,
        }

    def policy_contract(self) -> dict[str, Any]:
        """The robot-specific part of the exported student's policy contract
        (``sitt_policy_node.contract``)."""
        return {
            "task": "arm_drawer",
            "robot_kind": "arm",
            "control_rate_hz": 1.0 / CONTROL_DT,
            "camera": self.camera_info(),
            "state_fields": [f.to_dict() for f in STUDENT_STATE_FIELDS],
            "action": {
                "names": list(ACTION_NAMES), "units": list(ACTION_UNITS),
                "low": [-1.0] * ACTION_DIM, "high": [1.0] * ACTION_DIM,
                "scale": ACTION_SCALE.tolist(), "offset": [0.0] * ACTION_DIM,
                "meaning": "increments of the joint position targets per control step: "
                           "panda_joint1..7 [rad], then both finger joints [m, + opens]; "
                           "physical value = offset + scale * action. The node integrates "
                           "them (integrate: clipped to the joint limits and to max_lead of "
                           "the measured positions) and publishes the absolute targets",
                "safe": SAFE_ACTION.tolist(),
                "integrate": INTEGRATOR.to_contract(),
            },
            "ros": {
                "joint_state": {"topic": "joint_states", "type": "sensor_msgs/msg/JointState"},
                "camera": {"topic": "camera/image_raw", "type": "sensor_msgs/msg/Image"},
                # ros2_control's forward_command_controller (position interfaces).
                "action": {"topic": "forward_position_controller/commands",
                           "type": "std_msgs/msg/Float64MultiArray",
                           "layout": "data = the 9 absolute joint position targets [rad, m "
                                     "for the fingers] in action.integrate.joints order"},
            },
        }

    def close_extras(self, **kwargs: object) -> None:
        for world in self.worlds:
            world.close()

    # ----------------------------------------------------------------- task hooks
    def _reset_envs(self, env_ids: np.ndarray) -> None:
        env_ids = np.asarray(env_ids, dtype=np.int64)
        for i, rng in zip(env_ids, self._episode_rngs(env_ids), strict=True):
            cabinet_xy, joints, shift = sample_layout(rng, self.handle_shift_range,
                                                       self.start_joints)
            self.cabinet_xy[i], self.handle_shift[i] = cabinet_xy, shift
            self.worlds[i].reset(cabinet_xy, joints, shift)
            self._read(i)
            # The measured joints (bitwise ``joints``: the arm starts at rest), as the policy
            # node starts its targets.
            self.targets[i] = INTEGRATOR.hold(self.joint_position[i])
        self.steps[env_ids] = 0
        self.max_opening[env_ids] = 0.0
        self.max_drawer_speed[env_ids] = 0.0
        self.grasp_steps[env_ids] = 0
        self.visible_sum[env_ids] = 0.0
        self.visible_count[env_ids] = 0

    def _read(self, i: int) -> None:
        (self.joint_position[i], self.joint_velocity[i], self.drawer[i], self.grasp_position[i],
         rotation) = self.worlds[i].read()
        self.grasp_rotation[i] = np.reshape(rotation, (3, 3))

    def _step(
        self, actions: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, np.ndarray]]:
        previous = self.targets
        if self.action_mode == "targets":
            targets = np.asarray(actions, dtype=np.float64).reshape(self.num_envs, 9)
            if not np.isfinite(targets).all():
                raise ValueError(f"joint targets must be finite, got {targets.tolist()}")
            # Limits and lead clamp as the integrator applies them: a no-op for targets the
            # policy node built with it, a guard against anything else.
            self.targets = INTEGRATOR.clamp(targets, self.joint_position)
        else:
            actions = np.clip(np.asarray(actions, dtype=np.float64).reshape(
                self.num_envs, ACTION_DIM), -1.0, 1.0)
            self.targets = INTEGRATOR.step(self.targets, self.joint_position, actions)
        for i, world in enumerate(self.worlds):
            world.step(self.targets[i])
            self._read(i)
        terms, grasped = self.reward_terms(INTEGRATOR.applied_action(previous, self.targets))
        reward = sum(terms.values())
        self.steps += 1
        opening = self.drawer[:, 0]
        success = self.succeeded(grasped)
        self.max_opening = np.maximum(self.max_opening, opening)
        self.max_drawer_speed = np.maximum(self.max_drawer_speed, np.abs(self.drawer[:, 1]))
        self.grasp_steps += grasped
        if self.track_visibility:
            ids = np.flatnonzero(self.steps % VISIBILITY_EVERY == 1)
            self.visible_sum[ids] += self.handle_visibility(ids)
            self.visible_count[ids] += 1
        terminated = (opening >= SUCCESS_OPENING) if self.hook_ends_episode else success
        truncated = (self.steps >= self.episode_steps) & ~terminated
        summary = {
            "success": success.astype(np.float64),
            "max_opening": self.max_opening.copy(),
            "max_drawer_speed": self.max_drawer_speed.copy(),
            "grasped_fraction": self.grasp_steps / np.maximum(self.steps, 1),
        }
        if self.track_visibility:
            summary["handle_visible"] = self.visible_sum / np.maximum(self.visible_count, 1)
        return reward.astype(np.float32), terminated, truncated, summary

    def reward_terms(self, actions: np.ndarray) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """The reward's terms for the current state after the applied ``actions`` (``(n, 8)``,
        see the action term; each term ``(num_envs,)``) and whether each gripper holds its
        handle."""
        to_handle = self.handle_positions() - self.grasp_position
        dist = np.sqrt(np.einsum("ij,ij->i", to_handle, to_handle))
        approach = self.grasp_rotation[:, :, 2] @ -self._normal
        finger_vertical = self.finger_vertical()
        align = 0.5 * (approach + finger_vertical)
        on_bar, grasped = self.grip()
        opened = np.clip(self.drawer[:, 0] / SUCCESS_OPENING, 0.0, 1.0)
        terms = {
            "reach": W_REACH * -np.tanh(dist[:, None] / REACH_SCALES).mean(axis=1),
            "align": W_ALIGN * (align - 1.0),
            "grasp": W_GRASP * (grasped - 1.0),
            "open": W_OPEN * ((opened * grasped if self.grip_reward else opened) - 1.0),
            "action": -W_ACTION * np.einsum("ij,ij->i", actions, actions),
            "success": SUCCESS_BONUS * self.succeeded(grasped),
        }
        if self.grip_reward:
            # u: 1 for fully open fingers, 0 for a gap of the bar's height.
            span = 2 * FINGER_OPEN - HANDLE_SIZE[2]
            unclosed = np.clip((self.finger_gap() - HANDLE_SIZE[2]) / span, 0.0, 1.0)
            terms["close"] = -W_CLOSE * np.where(on_bar, unclosed / 2, 1.0 - unclosed / 2)
        return terms, grasped

    def grip(self) -> tuple[np.ndarray, np.ndarray]:
        """``(num_envs,)`` each: whether the grasp point is on the handle bar (within
        ``GRASP_RADIUS`` of its axis) with the fingers vertical, and whether the fingers
        are also closed on it (``grasped``: a gap about the bar's height)."""
        off_bar = self.bar_offset()
        gap = self.finger_gap()
        on_bar = ((np.sqrt(np.einsum("ij,ij->i", off_bar, off_bar)) < GRASP_RADIUS)
                  & (self.finger_vertical() > GRASP_FINGER_VERTICAL))
        return on_bar, on_bar & (gap > GRASP_GAP[0]) & (gap < GRASP_GAP[1])

    def bar_offset(self) -> np.ndarray:
        """``(num_envs, 3)``: from each grasp point to the nearest point of its handle bar's
        axis between the posts (world frame, m); zero for a hand centred on the bar."""
        to_handle = self.handle_positions() - self.grasp_position
        along = np.clip(to_handle @ self._bar_axis, -HANDLE_POST_Y, HANDLE_POST_Y)
        return to_handle - along[:, None] * self._bar_axis

    def finger_gap(self) -> np.ndarray:
        """``(num_envs,)``: the gap between the fingers (m, the two finger joints' sum)."""
        return self.joint_position[:, 7] + self.joint_position[:, 8]

    def finger_vertical(self) -> np.ndarray:
        """``(num_envs,)``: |cos| of the angle between the finger axis and the vertical
        (1: fingers above and below a horizontal bar, as a grip needs)."""
        return np.abs(self.grasp_rotation[:, 2, 1])

    def succeeded(self, grasped: np.ndarray) -> np.ndarray:
        """Whether each environment's drawer is open enough to count (with the fingers
        holding the handle under ``success_needs_grasp``), given ``grasped`` from
        ``reward_terms``."""
        success = self.drawer[:, 0] >= SUCCESS_OPENING
        return success & grasped if self.success_needs_grasp else success

    def _state_vector(self, ids: np.ndarray | slice) -> np.ndarray:
        return concat_fields(STUDENT_STATE_FIELDS, {
            "joint_position": (self.joint_position[ids] - _OFFSET) * _SCALE,
            "joint_velocity": self.joint_velocity[ids],
        })

    def _teacher_obs(self) -> np.ndarray:
        to_handle = self.handle_positions() - self.grasp_position
        return np.concatenate([self._state_vector(slice(None)), to_handle, self.drawer],
                              axis=1).astype(np.float32)

    def _student_obs(self, env_ids: np.ndarray) -> dict[str, np.ndarray]:
        return {"image": self.render_images(env_ids), "state": self._state_vector(env_ids)}


def apply_increments(targets: np.ndarray, joints: np.ndarray, actions: np.ndarray) -> np.ndarray:
    """New joint targets ``(n, 9)`` from the old ones, the measured joints and actions
    ``(n, 8)`` in [-1, 1]: arm targets move by ``ACTION_SCALE * a`` but stay within
    ``MAX_TARGET_LEAD`` of the joints, both finger targets move by the last increment;
    everything within the joint limits (``INTEGRATOR.step``)."""
    return INTEGRATOR.step(targets, joints, actions)


class ArmDrawerEnv(SingleTaskEnv):
    """A single arm for ``gymnasium.make("sitt/ArmDrawer-v0")``."""

    def __init__(self, seed: int = 0, image_size: int = IMAGE_SIZE,
                 episode_steps: int = EPISODE_STEPS, action_mode: str = "increments",
                 handle_shift_range: float = HANDLE_SHIFT_RANGE,
                 success_needs_grasp: bool = False, hook_ends_episode: bool = False,
                 grip_reward: bool = False) -> None:
        super().__init__(ArmDrawerVecEnv(1, seed=seed, image_size=image_size,
                                         episode_steps=episode_steps, action_mode=action_mode,
                                         handle_shift_range=handle_shift_range,
                                         success_needs_grasp=success_needs_grasp,
                                         hook_ends_episode=hook_ends_episode,
                                         grip_reward=grip_reward))

    def close(self) -> None:
        self.vec.close()  # disconnects the pybullet client


__all__ = ["ACTION_SCALE", "INTEGRATOR", "SAFE_ACTION", "ArmDrawerEnv", "ArmDrawerVecEnv",
           "apply_increments"]
