"""The policy node's safety state machine (pure Python, no ROS).

States::

    WAITING  --all inputs received, fresh, valid-->  RUNNING
    RUNNING  --an input stale / invalid / NaN, or inference failed / NaN action-->  HOLD
    HOLD     --inputs fresh and valid again-->  RUNNING
    any      --disabled-->  DISABLED  --enabled-->  (re-evaluated on the next step)
    any      --emergency stop-->  ESTOP  (latched until the node restarts)

Only RUNNING lets the policy act; every other state publishes the contract's safe action.
Each control step calls ``check_inputs`` (may the policy run?) and, when it ran,
``check_output``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum


class State(IntEnum):
    """Numeric codes are published on the debug topic and in diagnostics."""

    WAITING = 0
    RUNNING = 1
    HOLD = 2
    DISABLED = 3
    ESTOP = 4


@dataclass(frozen=True)
class InputStatus:
    """Names of the required inputs that were never received, are older than their limit,
    or whose latest message was rejected."""

    missing: tuple[str, ...] = ()
    stale: tuple[str, ...] = ()
    invalid: tuple[str, ...] = ()


class SafetyMonitor:
    def __init__(self) -> None:
        self.state = State.WAITING
        self.reason = "no input received yet"
        self.enabled = True

    @property
    def may_act(self) -> bool:
        return self.state is State.RUNNING

    def set_enabled(self, enabled: bool) -> State:
        self.enabled = enabled
        if self.state is not State.ESTOP and not enabled:
            self._go(State.DISABLED, "disabled by the enable service")
        return self.state

    def emergency_stop(self, reason: str) -> State:
        if self.state is not State.ESTOP:
            self._go(State.ESTOP, reason)
        return self.state

    def check_inputs(self, status: InputStatus) -> State:
        """The state for this step from the inputs alone; RUNNING means run the policy."""
        if self.state is State.ESTOP:
            return self.state
        if not self.enabled:
            self._go(State.DISABLED, "disabled by the enable service")
        elif status.missing:
            self._go(State.WAITING, f"no message yet from {', '.join(status.missing)}")
        elif status.stale or status.invalid:
            parts = [f"stale {', '.join(status.stale)}"] if status.stale else []
            parts += [f"rejected {', '.join(status.invalid)}"] if status.invalid else []
            self._go(State.HOLD, "; ".join(parts))
        else:
            self._go(State.RUNNING, "inputs fresh and valid")
        return self.state

    def check_output(self, ok: bool, reason: str = "") -> State:
        """After inference: a failed or non-finite result holds."""
        if not ok and self.state is State.RUNNING:
            self._go(State.HOLD, reason or "policy output rejected")
        return self.state

    def _go(self, state: State, reason: str) -> None:
        self.state, self.reason = state, reason
