"""The policy contract: the one description of an exported student's inputs and outputs.

``sitt-export`` writes it twice: inside the ONNX file (metadata key ``sitt_contract``) and
as a readable sidecar ``<model>.contract.json`` that also records the model's SHA-256.
The policy node builds its observation from the contract alone.

Pure Python + NumPy + onnxruntime (deploy side: no torch, no pybullet).

Schema (``version`` 1), top-level keys:

* ``task``, ``robot_kind`` (``quadrotor`` | ``arm``), ``control_rate_hz``;
* ``inputs``: ONNX inputs in order, each ``{name, shape, dtype, role}`` with ``role``
  ``camera`` (uint8 image, NHWC) or ``state`` (float32 proprioceptive vector); the first
  dimension is the batch (``"batch"``);
* ``outputs``: ``[{name: "action", shape: ["batch", n], dtype: "float32"}]``;
* ``camera``: ``{width, height, encoding, fov_deg: {horizontal, vertical}, intrinsics:
  {fx, fy, cx, cy}, mount: {parent_frame, frame_id, translation, rotation_xyzw}, near, far}``;
  the mount is the optical frame (z forward, x right, y down) in the body frame;
* ``state_fields``: the ordered fields of the ``state`` input, each ``{name, size, unit,
  frame, description, ros_input, ros_field, transform, params}`` (see the ``transform``
  names in ``TRANSFORMS``);
* ``action``: ``{names, units, low, high, scale, offset, meaning, safe}``: the model
  outputs a normalised action in ``[low, high]``; its physical value is
  ``offset + scale * action``; ``safe`` is the normalised action to publish when the policy
  must not act (e.g. hover). Optional ``integrate``: the action is a per-step increment that
  the node integrates into absolute targets and publishes instead (``integrators``: kind
  ``joint_position_target`` with ``joints``, ``action_index``, ``step_scale``, ``lower``,
  ``upper``, ``max_lead``); then ``offset`` is 0, ``scale`` equals ``step_scale``, ``safe``
  is 0 (hold the targets) and ``ros.action.type`` is ``std_msgs/msg/Float64MultiArray``;
* ``ros``: default topic names and message types of the inputs and the action;
* ``provenance``: where the model came from (run, checkpoint, iteration, date).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from .actions import FLOAT64_ARRAY
from .integrators import JointTargetIntegrator

CONTRACT_VERSION = 1
METADATA_KEY = "sitt_contract"
SIDECAR_SUFFIX = ".contract.json"

ROBOT_KINDS = ("quadrotor", "arm")
INPUT_ROLES = ("camera", "state")
ROS_INPUTS = ("odometry", "command", "joint_state", "previous_action")
TRANSFORMS = ("none", "rotate_body_to_world", "rotation_matrix_columns_xy", "scale_offset")
ENCODINGS = ("rgb8", "bgr8", "mono8")
ONNX_DTYPES = {"uint8": "tensor(uint8)", "float32": "tensor(float)"}

REQUIRED = {
    "": ("version", "task", "robot_kind", "control_rate_hz", "inputs", "outputs",
         "state_fields", "action", "ros"),
    "inputs[]": ("name", "shape", "dtype", "role"),
    "outputs[]": ("name", "shape", "dtype"),
    "camera": ("width", "height", "encoding", "fov_deg", "intrinsics", "mount"),
    "state_fields[]": ("name", "size", "unit", "frame", "description", "ros_input",
                       "ros_field", "transform"),
    "action": ("names", "units", "low", "high", "scale", "offset", "meaning", "safe"),
}


class ContractError(ValueError):
    """A contract or model that cannot be used; the message says what and where."""


def _require(obj: Any, where: str, keys: tuple[str, ...]) -> None:
    if not isinstance(obj, dict):
        raise ContractError(f"contract{where}: expected a mapping, got {type(obj).__name__}")
    missing = [k for k in keys if k not in obj]
    if missing:
        raise ContractError(f"contract{where}: missing key(s) {', '.join(missing)}")


def _one_of(value: Any, allowed: Iterable[str], where: str) -> None:
    """A contract entry that must be one of a fixed set of names."""
    allowed = tuple(allowed)
    if value not in allowed:
        raise ContractError(f"contract{where}: {value!r} not in {allowed}")


def validate_contract(contract: dict[str, Any]) -> dict[str, Any]:
    """Check a contract's structure and consistency; returns it unchanged."""
    _require(contract, "", REQUIRED[""])
    if contract["version"] != CONTRACT_VERSION:
        raise ContractError(f"contract.version: {contract['version']!r} is not supported "
                            f"(this node reads version {CONTRACT_VERSION})")
    _one_of(contract["robot_kind"], ROBOT_KINDS, ".robot_kind")
    rate = contract["control_rate_hz"]
    if not isinstance(rate, (int, float)) or not rate > 0:
        raise ContractError(f"contract.control_rate_hz: must be > 0, got {rate!r}")
    inputs = contract["inputs"]
    if not isinstance(inputs, list) or not inputs:
        raise ContractError("contract.inputs: expected a non-empty list")
    roles = []
    for i, inp in enumerate(inputs):
        _require(inp, f".inputs[{i}]", REQUIRED["inputs[]"])
        _one_of(inp["role"], INPUT_ROLES, f".inputs[{i}].role")
        _one_of(inp["dtype"], ONNX_DTYPES, f".inputs[{i}].dtype")
        roles.append(inp["role"])
    if roles.count("state") != 1 or roles.count("camera") > 1:
        raise ContractError(f"contract.inputs: expected one 'state' input and at most one "
                            f"'camera' input, got roles {roles}")
    fields = contract["state_fields"]
    if not isinstance(fields, list) or not fields:
        raise ContractError("contract.state_fields: expected a non-empty list")
    for i, f in enumerate(fields):
        _require(f, f".state_fields[{i}]", REQUIRED["state_fields[]"])
        _one_of(f["ros_input"], ROS_INPUTS, f".state_fields[{i}].ros_input")
        _one_of(f["transform"], TRANSFORMS, f".state_fields[{i}].transform")
    state = next(inp for inp in inputs if inp["role"] == "state")
    width = sum(int(f["size"]) for f in fields)
    if state["shape"][-1] != width:
        raise ContractError(f"contract: state input {state['name']!r} has width "
                            f"{state['shape'][-1]} but the state fields add up to {width}")
    if "camera" in roles:
        _require(contract.get("camera"), ".camera", REQUIRED["camera"])
        cam = contract["camera"]
        if cam["encoding"] not in ENCODINGS:
            raise ContractError(f"contract.camera.encoding: {cam['encoding']!r} not in "
                                f"{ENCODINGS}")
        image = next(inp for inp in inputs if inp["role"] == "camera")
        channels = 1 if cam["encoding"] == "mono8" else 3
        if list(image["shape"][1:]) != [cam["height"], cam["width"], channels]:
            raise ContractError(f"contract: camera input shape {image['shape']} does not match "
                                f"camera {cam['height']}x{cam['width']}x{channels}")
    action = contract["action"]
    _require(action, ".action", REQUIRED["action"])
    n = len(action["names"])
    for key in ("units", "low", "high", "scale", "offset", "safe"):
        if len(action[key]) != n:
            raise ContractError(f"contract.action.{key}: {len(action[key])} values for "
                                f"{n} action names")
    for i, (lo, hi, safe) in enumerate(zip(action["low"], action["high"], action["safe"],
                                           strict=True)):
        if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi and lo <= safe <= hi):
            raise ContractError(f"contract.action: bounds/safe value of {action['names'][i]!r} "
                                f"are invalid (low {lo}, high {hi}, safe {safe})")
    if "integrate" in action:
        _check_integrate(action, contract["ros"])
    outputs = contract["outputs"]
    if not isinstance(outputs, list) or len(outputs) != 1:
        raise ContractError("contract.outputs: expected exactly one output (the action)")
    _require(outputs[0], ".outputs[0]", REQUIRED["outputs[]"])
    if outputs[0]["shape"][-1] != n:
        raise ContractError(f"contract.outputs[0]: width {outputs[0]['shape'][-1]} but "
                            f"{n} action names")
    return contract


def _check_integrate(action: dict[str, Any], ros: Any) -> None:
    """An integrated action: the integrator's own checks, and the action section must
    describe the increments it integrates."""
    try:
        integrator = JointTargetIntegrator.from_contract(action["integrate"],
                                                         len(action["names"]))
    except ValueError as err:
        raise ContractError(f"contract.action.integrate: {err}") from err
    if (any(float(v) != 0.0 for v in action["offset"])
            or [float(v) for v in action["scale"]] != integrator.step_scale.tolist()):
        raise ContractError("contract.action: with integrate, the physical value is the "
                            "increment: offset must be 0 and scale equal integrate.step_scale")
    if any(float(v) != 0.0 for v in action["safe"]):
        raise ContractError(f"contract.action.safe: must be all 0 with integrate (the safe "
                            f"action holds the targets), got {action['safe']}")
    kind = ros.get("action", {}).get("type") if isinstance(ros, dict) else None
    if kind != FLOAT64_ARRAY:
        raise ContractError(f"contract.ros.action.type: integrated targets are published as "
                            f"{FLOAT64_ARRAY}, got {kind!r}")


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def sidecar_path(model_path: str | Path) -> Path:
    model_path = Path(model_path)
    return model_path.with_name(model_path.stem + SIDECAR_SUFFIX)


def contract_json(contract: dict[str, Any]) -> str:
    """Canonical JSON (sorted keys) so the embedded and sidecar copies compare exactly."""
    return json.dumps(contract, sort_keys=True, separators=(",", ":"))


def check_session(contract: dict[str, Any], session: Any) -> None:
    """The ONNX graph's inputs and outputs must be the contract's, by name, dtype and rank."""
    graph_inputs = {i.name: i for i in session.get_inputs()}
    for inp in contract["inputs"]:
        if inp["name"] not in graph_inputs:
            raise ContractError(f"model has no input {inp['name']!r} (it has "
                                f"{sorted(graph_inputs)})")
        g = graph_inputs[inp["name"]]
        if g.type != ONNX_DTYPES[inp["dtype"]]:
            raise ContractError(f"model input {g.name!r} is {g.type}, contract says "
                                f"{inp['dtype']}")
        if len(g.shape) != len(inp["shape"]) or any(
                isinstance(a, int) and isinstance(b, int) and a != b
                for a, b in zip(g.shape, inp["shape"], strict=True)):
            raise ContractError(f"model input {g.name!r} has shape {g.shape}, contract says "
                                f"{inp['shape']}")
    if len(graph_inputs) != len(contract["inputs"]):
        raise ContractError(f"model has inputs {sorted(graph_inputs)}, contract lists "
                            f"{[i['name'] for i in contract['inputs']]}")
    out = contract["outputs"][0]
    graph_outputs = {o.name: o for o in session.get_outputs()}
    if out["name"] not in graph_outputs:
        raise ContractError(f"model has no output {out['name']!r} (it has "
                            f"{sorted(graph_outputs)})")
    g = graph_outputs[out["name"]]
    if isinstance(g.shape[-1], int) and g.shape[-1] != out["shape"][-1]:
        raise ContractError(f"model output {g.name!r} has shape {g.shape}, contract says "
                            f"{out['shape']}")


def load_policy(model_path: str | Path, providers: list[str] | None = None,
                threads: int = 1) -> tuple[dict[str, Any], Any]:
    """Open an exported student: verify file, hash, contract and graph; return
    ``(contract, onnxruntime.InferenceSession)``. Every problem raises ContractError."""
    import onnxruntime as ort

    model_path = Path(model_path)
    if not model_path.is_file():
        raise ContractError(f"model file not found: {model_path}")
    side = sidecar_path(model_path)
    if not side.is_file():
        raise ContractError(f"policy contract not found: {side} (written by sitt-export "
                            f"next to the model)")
    try:
        sidecar = json.loads(side.read_text())
    except json.JSONDecodeError as err:
        raise ContractError(f"{side}: not valid JSON ({err})") from err
    expected = sidecar.pop("model_sha256", None)
    if not expected:
        raise ContractError(f"{side}: no model_sha256 recorded")
    actual = sha256_file(model_path)
    if actual != expected:
        raise ContractError(f"{model_path}: SHA-256 {actual} differs from the contract's "
                            f"{expected}; the model or its contract was changed")
    validate_contract(sidecar)
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    try:
        session = ort.InferenceSession(str(model_path), options,
                                       providers=providers or ["CPUExecutionProvider"])
    except Exception as err:  # onnxruntime raises several types for a corrupt file
        raise ContractError(f"{model_path}: onnxruntime cannot load it ({err})") from err
    embedded = session.get_modelmeta().custom_metadata_map.get(METADATA_KEY)
    if embedded is None:
        raise ContractError(f"{model_path}: no {METADATA_KEY!r} metadata in the model")
    if contract_json(json.loads(embedded)) != contract_json(sidecar):
        raise ContractError(f"{side} does not match the contract embedded in {model_path}")
    check_session(sidecar, session)
    return sidecar, session
