"""Action integrators: the policy's per-step action -> what the robot's controller takes.

``joint_position_target`` (the arm task, the contract's ``action.integrate``): each action
element moves the position targets of one or more joints by ``step_scale * action`` per
control step; the new targets stay within ``max_lead`` of the measured joint positions (a
blocked joint does not wind its target up) and within the joint limits. The robot receives
the absolute targets (ros2_control's forward position controller convention).

This is the only implementation: ``sitt_training``'s arm environment calls it to step its
simulation, and the policy node to build the targets it publishes, so the two cannot drift.
Pure NumPy (deploy side: no torch, no pybullet, no sitt_training).

Contract section (``action.integrate``)::

    {"kind": "joint_position_target",
     "joints": [...],         # target order = the published Float64MultiArray's data order
     "action_index": [...],   # per joint: the action element that moves its target
     "step_scale": [...],     # per action element: target change per unit action and step
     "lower": [...], "upper": [...],  # per joint: position limits of the targets
     "max_lead": [...]}       # per joint: |target - measured| bound, null: none
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

JOINT_POSITION_TARGET = "joint_position_target"
KINDS = (JOINT_POSITION_TARGET,)
CONTRACT_KEYS = ("kind", "joints", "action_index", "step_scale", "lower", "upper", "max_lead")


@dataclass(frozen=True, eq=False)
class JointTargetIntegrator:
    """Joint position targets integrating per-step increments (see the module docstring).

    Arrays may carry any leading batch shape: ``targets`` and ``joints`` ``(..., J)``,
    ``actions`` ``(..., A)``; the math is float64."""

    joints: tuple[str, ...]
    action_index: np.ndarray  # (J,) int
    step_scale: np.ndarray  # (A,)
    lower: np.ndarray  # (J,)
    upper: np.ndarray  # (J,)
    max_lead: np.ndarray  # (J,), inf where the targets may lead the joints freely

    def __post_init__(self) -> None:
        n_joints = len(self.joints)
        if n_joints == 0 or len(set(self.joints)) != n_joints:
            raise ValueError(f"joints must be distinct names, got {list(self.joints)}")
        for name in ("action_index", "lower", "upper", "max_lead"):
            if getattr(self, name).shape != (n_joints,):
                raise ValueError(f"{name}: {getattr(self, name).size} values for "
                                 f"{n_joints} joints")
        n_actions = self.step_scale.size
        if self.step_scale.shape != (n_actions,) or not (
                np.isfinite(self.step_scale).all() and (self.step_scale > 0).all()):
            raise ValueError(f"step_scale must be finite and > 0, got "
                             f"{self.step_scale.tolist()}")
        if not ((self.action_index >= 0) & (self.action_index < n_actions)).all():
            raise ValueError(f"action_index must lie in 0..{n_actions - 1}, got "
                             f"{self.action_index.tolist()}")
        unused = sorted(set(range(n_actions)) - set(self.action_index.tolist()))
        if unused:
            raise ValueError(f"action element(s) {unused} move no joint")
        if not (np.isfinite(self.lower).all() and np.isfinite(self.upper).all()
                and (self.lower < self.upper).all()):
            raise ValueError("lower/upper must be finite with lower < upper for every joint")
        if not (self.max_lead > 0).all():  # NaN fails too
            raise ValueError(f"max_lead must be > 0 or null, got {self.max_lead.tolist()}")
        # (A, J): each action's mean over the joints it moves (applied_action).
        share = (self.action_index[None, :] == np.arange(n_actions)[:, None]).astype(float)
        object.__setattr__(self, "_mean", share / share.sum(axis=1, keepdims=True))

    # ------------------------------------------------------------------ contract
    @classmethod
    def from_contract(cls, integrate: Mapping[str, Any], n_actions: int
                      ) -> JointTargetIntegrator:
        """From the contract's ``action.integrate``; ValueError names what is wrong."""
        if not isinstance(integrate, Mapping):
            raise ValueError(f"expected a mapping, got {type(integrate).__name__}")
        missing = [k for k in CONTRACT_KEYS if k not in integrate]
        if missing:
            raise ValueError(f"missing key(s) {', '.join(missing)}")
        if integrate["kind"] not in KINDS:
            raise ValueError(f"kind {integrate['kind']!r} not in {KINDS}")
        try:
            out = cls(
                joints=tuple(str(j) for j in integrate["joints"]),
                action_index=np.asarray(integrate["action_index"], dtype=np.int64),
                step_scale=np.asarray(integrate["step_scale"], dtype=np.float64),
                lower=np.asarray(integrate["lower"], dtype=np.float64),
                upper=np.asarray(integrate["upper"], dtype=np.float64),
                max_lead=np.array([math.inf if v is None else v
                                   for v in integrate["max_lead"]], dtype=np.float64))
        except (TypeError, ValueError) as err:
            raise ValueError(str(err)) from err
        if out.step_scale.size != n_actions:
            raise ValueError(f"step_scale has {out.step_scale.size} values for {n_actions} "
                             f"action elements")
        return out

    def to_contract(self) -> dict[str, Any]:
        """The contract's ``action.integrate`` section (JSON-ready; no lead clamp: null)."""
        return {
            "kind": JOINT_POSITION_TARGET,
            "joints": list(self.joints),
            "action_index": self.action_index.tolist(),
            "step_scale": self.step_scale.tolist(),
            "lower": self.lower.tolist(),
            "upper": self.upper.tolist(),
            "max_lead": [None if math.isinf(v) else v for v in self.max_lead.tolist()],
        }

    # ------------------------------------------------------------------ math
    def clamp(self, targets: np.ndarray, joints: np.ndarray) -> np.ndarray:
        """``targets`` within ``max_lead`` of the measured ``joints``, then within the
        limits. Idempotent: clamping clamped targets again changes no bit."""
        joints = np.asarray(joints, dtype=np.float64)
        out = np.clip(np.asarray(targets, dtype=np.float64),
                      joints - self.max_lead, joints + self.max_lead)
        return np.clip(out, self.lower, self.upper)

    def step(self, targets: np.ndarray, joints: np.ndarray, actions: np.ndarray) -> np.ndarray:
        """New targets from the old ones, the measured joints and normalised ``actions``
        (already clipped to the action bounds by the caller)."""
        increments = (self.step_scale * np.asarray(actions, dtype=np.float64))
        raw = np.asarray(targets, dtype=np.float64) + increments[..., self.action_index]
        return self.clamp(raw, joints)

    def applied_action(self, old: np.ndarray, new: np.ndarray) -> np.ndarray:
        """The normalised action ``(..., A)`` that the target change ``old -> new`` amounts
        to (each element: the mean change of its joints / ``step_scale``). It equals the
        commanded action up to rounding unless a limit or the lead clamp cut it."""
        delta = np.asarray(new, dtype=np.float64) - np.asarray(old, dtype=np.float64)
        return (delta @ self._mean.T) / self.step_scale

    def hold(self, joints: np.ndarray) -> np.ndarray:
        """Targets that hold the measured ``joints`` (where the integration starts)."""
        return self.clamp(np.array(joints, dtype=np.float64), joints)

