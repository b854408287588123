"""A scripted drawer opener for the arm task: privileged state, resolved-rate control.

It shows the task can be solved within an episode with its action space (tests), and gives
reference trajectories. It reads the true handle position (what the teacher knows) and
uses each world's Jacobian; the action it returns is an ordinary 8-vector in [-1, 1].

Phases per environment: approach a point ``PRE_GRASP`` in front of the handle with the
hand level and the fingers vertical, move in, close the fingers, pull along the drawer's
axis. The grasp point's velocity is ``GAIN * error`` (capped), turned into joint speeds by
a damped pseudo-inverse of the Jacobian, with a null-space pull towards the start posture
so the elbow stays where it began.
"""

from __future__ import annotations

import numpy as np

from .arm_drawer import ACTION_SCALE, GRASP_GAP, ArmDrawerVecEnv
from .arm_world import (
    CONTROL_DT,
    FINGER_OPEN,
    JOINT_LOWER,
    JOINT_UPPER,
    ArmWorld,
    drawer_normal,
)

APPROACH, INSERT, CLOSE, PULL = 0, 1, 2, 3
PRE_GRASP = 0.12  # m in front of the handle
GAIN = 6.0  # 1/s, position error -> velocity
ROT_GAIN = 6.0  # 1/s
MAX_SPEED = 0.5  # m/s
MAX_ROT_SPEED = 1.5  # rad/s
DAMPING = 0.05
NULL_GAIN = 0.5  # 1/s towards the task's start pose in the null space
CLOSE_STEPS = 6  # steps with the fingers closing before pulling
APPROACH_DONE = 0.02  # m from the pre-grasp point: move in
INSERT_DONE = 0.008  # m from the handle: close
MARKOV_GAP_SLACK = 0.01  # m: fingers within this of fully open count as open
# markov: in line in front of the handle (moving in) within these; looser than the
# approach's own tolerances, so that small errors do not send the hand back out
MARKOV_IN_LINE = 0.03  # m off the line
MARKOV_TURNED = 0.25  # rad from the grasp orientation
# markov: close within this of the handle's centre (the hand still moves in while the
# fingers close; a noisy hand seldom gets within INSERT_DONE)
MARKOV_CLOSE = 0.015  # m
PULL_LEAD = 0.1  # m: the pull target runs this far ahead of the handle


def rotation_error(rot: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Small-angle rotation vector (world frame) that turns ``rot`` towards ``target``."""
    e = target @ rot.T
    return 0.5 * np.array([e[2, 1] - e[1, 2], e[0, 2] - e[2, 0], e[1, 0] - e[0, 1]])


def solve_ik(world: ArmWorld, position: np.ndarray, rotation: np.ndarray,
             start: np.ndarray, iterations: int = 200) -> np.ndarray:
    """Joint positions ``(9,)`` that put the grasp point at ``position`` with the hand axes
    ``rotation`` (damped least squares from ``start``; fingers as in ``start``). Leaves the
    arm of ``world`` there. Check the result: an unreachable target gives the closest try."""
    q = np.array(start, dtype=np.float64)
    for _ in range(iterations):
        world.set_joints(q)
        _, _, _, x, rot = world.read()
        err = np.concatenate([position - np.asarray(x),
                              rotation_error(np.reshape(rot, (3, 3)), rotation)])
        if np.linalg.norm(err[:3]) < 1e-4 and np.linalg.norm(err[3:]) < 1e-3:
            break
        jac = world.jacobian(q)[:, :7]
        step = jac.T @ np.linalg.solve(jac @ jac.T + DAMPING**2 * np.eye(6), err)
        q[:7] = np.clip(q[:7] + step, JOINT_LOWER[:7], JOINT_UPPER[:7])
    world.set_joints(q)
    return q


class ScriptedDrawerOpener:
    """Call ``act()`` once per step of ``env``; ``reset(ids)`` after those envs reset.

    ``middle_height=True`` aims at the middle of the drawer front's height instead of at
    the handle (a grasp that does not know the handle's height, as a student that cannot
    see it; ``bench/arm_handle_height.py``).

    ``markov=True`` reads the phase from the state at every step instead of remembering
    it: holding the handle -> pull; at the handle, or on the bar with the fingers closing
    -> close; in line in front of it with the fingers open and the hand turned -> move in;
    else (fingers closed on nothing included) -> approach with the fingers opening. Its
    action is then a function of the state alone, so it can label any state a learner
    reaches (``teacher_demos``), and it starts again after a slip."""

    def __init__(self, env: ArmDrawerVecEnv, middle_height: bool = False,
                 markov: bool = False) -> None:
        self.env = env
        self.middle_height = middle_height
        self.markov = markov
        self.phase = np.zeros(env.num_envs, dtype=np.int64)
        self.closing = np.zeros(env.num_envs, dtype=np.int64)

    def reset(self, ids: np.ndarray | None = None) -> None:
        ids = slice(None) if ids is None else ids
        self.phase[ids] = APPROACH
        self.closing[ids] = 0

    def target_rotation(self, rot: np.ndarray) -> np.ndarray:
        """Hand axes for the grasp: approach (z) into the drawer, fingers (y) vertical, the
        sign of y kept as it is (either way round grips the bar)."""
        z = -drawer_normal()
        y = np.array([0.0, 0.0, 1.0 if rot[2, 1] >= 0 else -1.0])
        return np.stack([np.cross(y, z), y, z], axis=1)

    def act(self) -> np.ndarray:
        env = self.env
        actions = np.zeros((env.num_envs, 8))
        handles = env.handle_positions()
        if self.middle_height:
            handles[:, 2] -= env.handle_shift
        normal = drawer_normal()
        if self.markov:
            self.phase[:] = self.phases_from_state(handles)
        for i in range(env.num_envs):
            x, rot, q = env.grasp_position[i], env.grasp_rotation[i], env.joint_position[i]
            handle = handles[i]
            goal_rot = self.target_rotation(rot)
            rot_err = rotation_error(rot, goal_rot)
            gripper = 1.0
            if self.phase[i] == APPROACH:
                target = handle + PRE_GRASP * normal
                if (np.linalg.norm(target - x) < APPROACH_DONE and np.linalg.norm(rot_err) < 0.1
                        and not self.markov):
                    self.phase[i] = INSERT
            if self.phase[i] == INSERT:
                target = handle
                if np.linalg.norm(target - x) < INSERT_DONE and not self.markov:
                    self.phase[i] = CLOSE
            if self.phase[i] == CLOSE:
                target, gripper = handle, -1.0
                self.closing[i] += 1
                if self.closing[i] > CLOSE_STEPS and not self.markov:
                    self.phase[i] = PULL
            if self.phase[i] == PULL:
                target, gripper = handle + PULL_LEAD * normal, -1.0
            velocity = _cap(GAIN * (target - x), MAX_SPEED)
            omega = _cap(ROT_GAIN * rot_err, MAX_ROT_SPEED)
            jac = env.worlds[i].jacobian(q)[:, :7]
            inv = jac.T @ np.linalg.inv(jac @ jac.T + DAMPING**2 * np.eye(6))
            dq = inv @ np.concatenate([velocity, omega])
            dq += (np.eye(7) - inv @ jac) @ (NULL_GAIN * (self.env.start_joints[:7] - q[:7]))
            new_target = q[:7] + dq * CONTROL_DT
            actions[i, :7] = (new_target - env.targets[i, :7]) / ACTION_SCALE[:7]
            actions[i, 7] = gripper
        return np.clip(actions, -1.0, 1.0)

    def phases_from_state(self, handles: np.ndarray) -> np.ndarray:
        """Each environment's phase, read from its state (``markov``; class docstring)."""
        env = self.env
        normal = drawer_normal()
        rel = env.grasp_position - handles
        out = rel @ normal  # how far in front of the handle
        lateral = np.linalg.norm(rel - out[:, None] * normal, axis=1)
        turned = np.array([np.linalg.norm(rotation_error(r, self.target_rotation(r)))
                           < MARKOV_TURNED for r in env.grasp_rotation])
        on_bar, grasped = env.grip()
        gap = env.finger_gap()
        open_fingers = gap > 2 * FINGER_OPEN - MARKOV_GAP_SLACK
        at_handle = np.linalg.norm(rel, axis=1) < MARKOV_CLOSE
        phase = np.full(env.num_envs, APPROACH)
        in_line = ((out > -INSERT_DONE) & (out < PRE_GRASP + APPROACH_DONE)
                   & (lateral < MARKOV_IN_LINE) & turned & open_fingers)
        phase[in_line] = INSERT
        phase[(at_handle & open_fingers) | (on_bar & ~open_fingers & (gap > GRASP_GAP[0]))] = CLOSE
        phase[grasped] = PULL
        return phase


def _cap(v: np.ndarray, limit: float) -> np.ndarray:
    norm = float(np.linalg.norm(v))
    return v if norm <= limit else v * (limit / norm)
