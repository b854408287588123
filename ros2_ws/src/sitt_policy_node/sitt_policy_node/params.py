"""Declared, read-only ROS parameters with ranges, and start-up errors with exit codes.

Shared by ``policy_node`` and the sim bridge: both read every knob once at start, and a
bad value must stop the node with a message that names the parameter."""

from __future__ import annotations

import gc
from dataclasses import dataclass
from typing import Any

import rclpy
from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
from rclpy.exceptions import ParameterException
from rclpy.node import Node

EXIT_BAD_PARAMETER = 1


class StartupError(RuntimeError):
    """The node cannot start; ``code`` is the process exit code."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Param:
    name: str
    default: Any
    description: str
    low: float | None = None
    high: float | None = None


def declare(node: Node, p: Param, default: Any = None) -> Any:
    """Declare ``p`` read-only (with its range, if any) and return its value."""
    value = p.default if default is None else default
    descriptor = ParameterDescriptor(description=p.description, read_only=True)
    if p.low is not None and isinstance(value, float):
        descriptor.floating_point_range = [FloatingPointRange(
            from_value=float(p.low), to_value=float(p.high), step=0.0)]
    elif p.low is not None and isinstance(value, int) and not isinstance(value, bool):
        descriptor.integer_range = [IntegerRange(
            from_value=int(p.low), to_value=int(p.high), step=1)]
    try:
        return node.declare_parameter(p.name, value, descriptor).value
    except ParameterException as err:  # wrong type (1 for 1.0) or out of range
        raise StartupError(f"parameter {p.name}: {err} (expected a "
                           f"{type(value).__name__} like {value!r})",
                           EXIT_BAD_PARAMETER) from err


def choice(name: str, value: Any, choices: tuple[str, ...]) -> str:
    """``value`` lower-cased if it is one of ``choices``, else a StartupError."""
    text = str(value).lower()
    if text not in choices:
        raise StartupError(f"parameter {name}={value!r}: expected one of "
                           f"{', '.join(choices)}", EXIT_BAD_PARAMETER)
    return text


def set_up(node: Node) -> int | None:
    """``node.setup()`` for a console script's ``main``: on a StartupError, log it, tear
    the node down and return the exit code; on success, None.

    Everything allocated by then (rclpy, onnxruntime, the model, the simulation) lives as
    long as the process, so it is moved out of the garbage collector's full passes, which
    otherwise stall a control step for milliseconds now and then."""
    try:
        node.setup()
    except StartupError as err:
        node.get_logger().fatal(str(err))
        node.destroy_node()
        rclpy.try_shutdown()
        return err.code
    gc.collect()
    gc.freeze()
    return None


EXECUTORS = ("events", "single_threaded")


def make_executor(kind: str) -> Any:
    """The rclpy executor named by an ``executor`` parameter (see ``EXECUTORS``).

    ``events`` is rclpy's C++ EventsExecutor (experimental): far less overhead per wake-up
    than the Python SingleThreadedExecutor, which dominates when every step waits on a few
    small messages (bench/hil_speed.py, bench/policy_latency.py)."""
    kind = choice("executor", kind, EXECUTORS)
    if kind == "events":
        from rclpy.experimental import EventsExecutor

        return EventsExecutor()
    from rclpy.executors import SingleThreadedExecutor

    return SingleThreadedExecutor()
