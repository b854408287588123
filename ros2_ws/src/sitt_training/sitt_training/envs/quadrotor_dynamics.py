"""Batched quadrotor model: collective thrust and body-rate commands, NumPy only.

Frames: world ENU (z up), body FLU (x forward, y left, z up). State arrays are batched
along the first axis, ``(N, components)``. Quaternions are stored in ROS order
``(x, y, z, w)`` and rotate body vectors into the world frame.

One control step (``QuadrotorModel.step``) runs ``substeps`` integration steps of:
body-rate P controller -> torques, X mixer -> rotor thrusts (clipped to the motor range),
first-order motor lag, rigid-body dynamics with linear drag, semi-implicit Euler.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class QuadParams:
    """Physical and controller constants (SI units)."""

    mass: float = 0.75  # kg
    arm_length: float = 0.15  # m, centre to rotor, X configuration
    inertia: tuple[float, float, float] = (0.0025, 0.0025, 0.0045)  # kg m^2, diagonal
    thrust_min: float = 0.0  # N per rotor
    thrust_max: float = 8.5  # N per rotor
    torque_ratio: float = 0.016  # m, rotor drag torque / thrust
    motor_time_constant: float = 0.03  # s
    drag: float = 0.3  # 1/s, linear drag acceleration -drag * v
    gravity: float = 9.81  # m/s^2
    control_rate: float = 50.0  # Hz
    substeps: int = 4  # integration steps per control step (5 ms)
    rate_gains: tuple[float, float, float] = (20.0, 20.0, 8.0)  # 1/s, roll pitch yaw
    max_rates: tuple[float, float, float] = (3.0, 3.0, 2.0)  # rad/s, roll pitch yaw

    @property
    def control_dt(self) -> float:
        return 1.0 / self.control_rate

    @property
    def dt(self) -> float:
        return self.control_dt / self.substeps

    @property
    def hover_rotor_thrust(self) -> float:
        return self.mass * self.gravity / 4.0


DEFAULT_PARAMS = QuadParams()

# The action is 4 values in [-1, 1]; command = ACTION_OFFSET + ACTION_SCALE * action:
# mass-normalised collective thrust c = g (1 + a0) in [0, 2g] m/s^2 (a0 = 0 hovers), and
# body-rate commands (roll, pitch, yaw) = a1..a3 * max_rates in rad/s.
ACTION_NAMES = ("collective_thrust", "roll_rate", "pitch_rate", "yaw_rate")
ACTION_UNITS = ("m/s^2", "rad/s", "rad/s", "rad/s")


def action_scale(params: QuadParams = DEFAULT_PARAMS) -> np.ndarray:
    return np.array([params.gravity, *params.max_rates])


def action_offset(params: QuadParams = DEFAULT_PARAMS) -> np.ndarray:
    return np.array([params.gravity, 0.0, 0.0, 0.0])


ACTION_SCALE = action_scale()
ACTION_OFFSET = action_offset()
HOVER_ACTION = np.zeros(4, dtype=np.float32)  # safe action: hover thrust, zero rates


def action_to_command(
    actions: np.ndarray, params: QuadParams = DEFAULT_PARAMS
) -> tuple[np.ndarray, np.ndarray]:
    """Clip actions ``(N, 4)`` to [-1, 1]; return collective thrust ``(N,)`` [m/s^2] and
    body-rate commands ``(N, 3)`` [rad/s]."""
    a = np.clip(np.asarray(actions, dtype=np.float64).reshape(-1, 4), -1.0, 1.0)
    command = action_offset(params) + action_scale(params) * a
    return command[:, 0], command[:, 1:]


def allocation_matrix(params: QuadParams = DEFAULT_PARAMS) -> np.ndarray:
    """``(4, 4)`` map from rotor thrusts to (collective thrust, roll, pitch, yaw torque).

    Rotors in the X configuration: 0 front-left, 1 rear-left, 2 rear-right, 3 front-right;
    0 and 2 spin one way, 1 and 3 the other, so their drag torques on the body oppose.
    """
    d = params.arm_length / math.sqrt(2.0)
    xy = np.array([[d, d], [-d, d], [-d, -d], [d, -d]])
    spin = np.array([1.0, -1.0, 1.0, -1.0])
    return np.stack([
        np.ones(4),
        xy[:, 1],  # roll torque = sum y_i f_i
        -xy[:, 0],  # pitch torque = -sum x_i f_i
        params.torque_ratio * spin,
    ])


@dataclass
class QuadState:
    """Batched state; ``QuadrotorModel.step`` updates these arrays in place."""

    position: np.ndarray  # (N, 3) m, world
    velocity: np.ndarray  # (N, 3) m/s, world
    quaternion: np.ndarray  # (N, 4) x, y, z, w; body -> world
    angular_velocity: np.ndarray  # (N, 3) rad/s, body
    rotor_thrust: np.ndarray  # (N, 4) N, after the motor lag


def yaw_to_quaternion(yaw: np.ndarray) -> np.ndarray:
    """Level attitudes with the given yaw angles, ``(N, 4)`` in ROS order x, y, z, w."""
    yaw = np.asarray(yaw, dtype=np.float64)
    q = np.zeros((*yaw.shape, 4))
    q[..., 2] = np.sin(0.5 * yaw)
    q[..., 3] = np.cos(0.5 * yaw)
    return q


def quaternion_to_matrix(q: np.ndarray) -> np.ndarray:
    """Rotation matrices ``(..., 3, 3)`` (body -> world) of unit quaternions ``(..., 4)``
    in ROS order x, y, z, w."""
    x, y, z, w = np.moveaxis(np.asarray(q, dtype=np.float64), -1, 0)
    xx, yy, zz = x * x, y * y, z * z
    xy, xz, yz = x * y, x * z, y * z
    wx, wy, wz = w * x, w * y, w * z
    m = np.empty((*x.shape, 3, 3))
    m[..., 0, 0] = 1.0 - 2.0 * (yy + zz)
    m[..., 0, 1] = 2.0 * (xy - wz)
    m[..., 0, 2] = 2.0 * (xz + wy)
    m[..., 1, 0] = 2.0 * (xy + wz)
    m[..., 1, 1] = 1.0 - 2.0 * (xx + zz)
    m[..., 1, 2] = 2.0 * (yz - wx)
    m[..., 2, 0] = 2.0 * (xz - wy)
    m[..., 2, 1] = 2.0 * (yz + wx)
    m[..., 2, 2] = 1.0 - 2.0 * (xx + yy)
    return m


def hover_state(position: np.ndarray, yaw: np.ndarray,
                params: QuadParams = DEFAULT_PARAMS) -> QuadState:
    """Drones at rest, level, rotors at hover thrust."""
    position = np.asarray(position, dtype=np.float64).reshape(-1, 3)
    n = len(position)
    return QuadState(
        position=position.copy(),
        velocity=np.zeros((n, 3)),
        quaternion=yaw_to_quaternion(np.broadcast_to(yaw, (n,))),
        angular_velocity=np.zeros((n, 3)),
        rotor_thrust=np.full((n, 4), params.hover_rotor_thrust),
    )


class QuadrotorModel:
    """Integrates a batch of drones with precomputed controller and mixer matrices."""

    def __init__(self, params: QuadParams = DEFAULT_PARAMS) -> None:
        self.params = params
        inertia = np.array(params.inertia)
        self._inertia = inertia
        self._inv_inertia = 1.0 / inertia
        self._rate_gain = inertia * np.array(params.rate_gains)  # torque per rate error
        # Gyroscopic term w x Jw for diagonal J: ((Jz-Jy) wy wz, (Jx-Jz) wz wx, (Jy-Jx) wx wy).
        self._gyro = np.array([inertia[2] - inertia[1], inertia[0] - inertia[2],
                               inertia[1] - inertia[0]])
        alloc = allocation_matrix(params)
        self._alloc_t = alloc.T.copy()  # wrench = thrusts @ alloc.T
        self._mix_t = np.linalg.inv(alloc).T.copy()  # thrusts = wrench @ mix.T
        # Exact discretisation of the first-order motor lag over one substep.
        self._lag = 1.0 - math.exp(-params.dt / params.motor_time_constant)

    def step(self, state: QuadState, thrust: np.ndarray, rates: np.ndarray) -> None:
        """Advance one control step with collective thrust ``(N,)`` [m/s^2] and body-rate
        commands ``(N, 3)`` [rad/s], held over the substeps."""
        p = self.params
        wrench_cmd = np.empty((len(thrust), 4))
        wrench_cmd[:, 0] = p.mass * thrust
        for _ in range(p.substeps):
            self._substep(state, wrench_cmd, rates)

    def _substep(self, s: QuadState, wrench_cmd: np.ndarray, rates: np.ndarray) -> None:
        p, dt = self.params, self.params.dt
        w = s.angular_velocity
        gyro = self._gyro * w[:, [1, 2, 0]] * w[:, [2, 0, 1]]
        # Rate loop with gyroscopic feed-forward, then the X mixer and the motor limits.
        wrench_cmd[:, 1:] = self._rate_gain * (rates - w) + gyro
        rotor_cmd = np.clip(wrench_cmd @ self._mix_t, p.thrust_min, p.thrust_max)
        s.rotor_thrust += self._lag * (rotor_cmd - s.rotor_thrust)
        wrench = s.rotor_thrust @ self._alloc_t

        x, y, z, qw = s.quaternion.T
        body_z = np.stack([2.0 * (x * z + qw * y), 2.0 * (y * z - qw * x),
                           1.0 - 2.0 * (x * x + y * y)], axis=1)
        accel = body_z * (wrench[:, :1] / p.mass) - p.drag * s.velocity
        accel[:, 2] -= p.gravity
        s.velocity += accel * dt
        s.position += s.velocity * dt
        w += (wrench[:, 1:] - gyro) * (self._inv_inertia * dt)

        # q' = 0.5 q (x) (w, 0): vector part 0.5 (qw w + qv x w), scalar part -0.5 qv . w.
        wx, wy, wz = w.T
        dq = np.stack([qw * wx + y * wz - z * wy,
                       qw * wy + z * wx - x * wz,
                       qw * wz + x * wy - y * wx,
                       -(x * wx + y * wy + z * wz)], axis=1)
        q = s.quaternion
        q += dq * (0.5 * dt)
        q /= np.sqrt(np.einsum("ij,ij->i", q, q))[:, None]
