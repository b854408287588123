"""``sitt-export``: the deployable student, one ONNX graph plus its policy contract.

The graph is E_S followed by the shared decoder D, taking raw ``uint8`` HxWx3 pixels and
the proprioceptive vector (all preprocessing is inside E_S) and returning the
deterministic action, clipped to the action bounds. Next to it, ``student.contract.json``
describes every input and output (``sitt_policy_node.contract``); the same contract is
embedded in the ONNX metadata. The task supplies the robot-specific part
(``policy_contract()``: state fields with their ROS sources, camera, action meaning).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import torch
from torch import nn

from sitt_policy_node.contract import (
    CONTRACT_VERSION,
    METADATA_KEY,
    ContractError,
    contract_json,
    load_policy,
    sha256_file,
    sidecar_path,
    validate_contract,
)

from .networks import TeacherStudentPolicy

MODEL_NAME = "student.onnx"
OPSET = 18


class DeployableStudent(nn.Module):
    """pi_S = D o E_S with deterministic, clipped actions; inputs as separate tensors."""

    def __init__(self, policy: TeacherStudentPolicy, input_names: list[str],
                 low: np.ndarray, high: np.ndarray) -> None:
        super().__init__()
        if policy.decoder.spec.discrete:
            raise ValueError("export supports continuous-action tasks only")
        self.encoder = policy.student_encoder
        self.decoder = policy.decoder
        self.input_names = input_names
        self.register_buffer("low", torch.as_tensor(low, dtype=torch.float32))
        self.register_buffer("high", torch.as_tensor(high, dtype=torch.float32))

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        obs = dict(zip(self.input_names, inputs, strict=True))
        mean = self.decoder(self.encoder(obs if len(obs) > 1 else inputs[0]))
        return torch.minimum(torch.maximum(mean, self.low), self.high)


def _inputs(env: Any) -> list[dict[str, Any]]:
    """The ONNX inputs, from the task's student observation space."""
    space = env.single_observation_space["student"]
    subspaces = space.spaces if hasattr(space, "spaces") else {"state": space}
    out = []
    for name, sub in subspaces.items():
        role = "camera" if sub.dtype == np.uint8 and len(sub.shape) == 3 else "state"
        out.append({"name": name, "shape": ["batch", *map(int, sub.shape)],
                    "dtype": str(np.dtype(sub.dtype)), "role": role})
    return out


def build_contract(env: Any, provenance: dict[str, Any]) -> dict[str, Any]:
    if not hasattr(env, "policy_contract"):
        raise ValueError(f"task {type(env).__name__} has no deployable student "
                         f"(it defines no policy_contract())")
    task_part = env.policy_contract()
    n = int(env.single_action_space.shape[0])
    contract = {
        "version": CONTRACT_VERSION,
        **task_part,
        "inputs": _inputs(env),
        "outputs": [{"name": "action", "shape": ["batch", n], "dtype": "float32"}],
        "provenance": provenance,
    }
    return validate_contract(contract)


def export_student(policy: TeacherStudentPolicy, env: Any, out_dir: Path,
                   provenance: dict[str, Any]) -> Path:
    """Write ``out_dir/student.onnx`` and its contract; returns the model path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    contract = build_contract(env, provenance)
    names = [inp["name"] for inp in contract["inputs"]]
    space = env.single_action_space
    module = DeployableStudent(policy, names, space.low, space.high).eval()
    example = tuple(  # batch 2: torch.export specialises a batch of 1 to a constant
        torch.zeros(2, *inp["shape"][1:], dtype=getattr(torch, inp["dtype"]))
        for inp in contract["inputs"])
    batch = torch.export.Dim("batch")
    model_path = out_dir / MODEL_NAME
    tmp = out_dir / (MODEL_NAME + ".tmp")
    # torch.onnx logs a warning per torchvision op it cannot register (torchvision is not
    # installed, and this graph has no vision ops): noise in every export's output.
    logging.getLogger("torch.onnx._internal.exporter._registration").setLevel(logging.ERROR)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # exporter deprecation chatter, not ours
        program = torch.onnx.export(
            module, example, dynamo=True, input_names=names, output_names=["action"],
            dynamic_shapes=(tuple({0: batch} for _ in names),),  # forward(*inputs)
            opset_version=OPSET,
            verbose=False)
    model = program.model_proto
    meta = model.metadata_props.add()
    meta.key, meta.value = METADATA_KEY, contract_json(contract)
    onnx.checker.check_model(model)
    onnx.save(model, tmp)
    tmp.replace(model_path)
    sidecar = dict(contract, model_sha256=sha256_file(model_path))
    side = sidecar_path(model_path)
    side_tmp = side.with_suffix(".tmp")
    side_tmp.write_text(json.dumps(sidecar, indent=2, sort_keys=True) + "\n")
    side_tmp.replace(side)
    load_policy(model_path)  # what the node will do: fail here rather than on the robot
    return model_path


def export_run(run_dir: Path, checkpoint: Path | str | None, out_dir: Path) -> Path:
    """Export a training run's student (``checkpoint`` as ``sitt-eval`` takes it: None for
    the newest, "best" for the validation-best networks) with the run as provenance."""
    from .cli import load_run
    from .envs import make_task

    cfg, policy, meta = load_run(run_dir, checkpoint)
    env = make_task(cfg.task.name, 1, 0, **cfg.task.kwargs)
    provenance = {"run_dir": str(Path(run_dir).resolve()), "method": cfg.method.name,
                  "seed": cfg.train.seed, "checkpoint": Path(meta["checkpoint"]).name,
                  "iteration": meta["iteration"], "env_steps": meta["env_steps"],
                  # The world it was trained in: the sim bridge builds the task with them.
                  "task_options": dict(cfg.task.kwargs),
                  "exported": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    try:
        return export_student(policy, env, out_dir, provenance)
    finally:
        env.close()


def onnx_student_actions(model_path: Path) -> Callable[[Any], np.ndarray]:
    """An exported student as an action function for ``evaluate(..., student_actions=)``:
    ONNX Runtime on the env's student observations, what the policy node runs, in process
    (so a HIL run can be compared with it step for step, without torch's float
    differences)."""
    contract, session = load_policy(model_path)
    names = [inp["name"] for inp in contract["inputs"]]

    def act(obs: Any) -> np.ndarray:
        # The whole batch in one run: its actions were bit-identical to one observation
        # per run (as the node runs them) for the quadrotor and arm students, batches of
        # 16-256.
        feeds = {name: obs[name] for name in names} if isinstance(obs, dict) else {names[0]: obs}
        return session.run(None, feeds)[0]
    return act


def export_main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="sitt-export",
        description="Export a run's student (encoder + shared decoder) to ONNX with its "
                    "policy contract, for sitt_policy_node.")
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--checkpoint", type=Path, help="default: the newest model_<iter>.pt; "
                        "'best': the validation-best networks (best_model.pt)")
    parser.add_argument("--out", type=Path, help="default: RUN_DIR/exported")
    args = parser.parse_args(argv)
    try:
        path = export_run(args.run_dir, args.checkpoint, args.out or args.run_dir / "exported")
    except (FileNotFoundError, ValueError, ContractError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"wrote {path} and {sidecar_path(path)}")
    return 0
