"""Export of the quadrotor student to ONNX: action parity with torch, and the policy
contract's round trip and error handling (sitt_policy_node.contract)."""

import json
import shutil
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch

from sitt_policy_node.contract import (
    ContractError,
    check_session,
    load_policy,
    sidecar_path,
    validate_contract,
)
from sitt_training.cli import load_run
from sitt_training.config import load_config
from sitt_training.envs.fields import field_slices
from sitt_training.envs.quadrotor import STUDENT_STATE_FIELDS, QuadrotorVecEnv
from sitt_training.evaluation import TEST_SEED, evaluate
from sitt_training.export import MODEL_NAME, export_main, export_student, onnx_student_actions
from sitt_training.obs import to_torch
from sitt_training.trainer import Trainer, build_policy

TINY = ["task.name=quadrotor", "task.num_envs=8", "task.student_envs=4", "method.name=sitt",
        "ppo.rollout_steps=8", "ppo.minibatches=2", "ppo.epochs=1", "method.align_iterations=2",
        "method.align_batch_size=16", "method.buffer_size=256", "network.hidden=[32]",
        "network.cnn_channels=[8, 8, 8, 8]", "network.normalize_obs=true",
        "train.iterations=1", "train.eval_every=0",
        "train.torch_threads=1", "train.checkpoint_buffer=false",
        "task.kwargs.deviation_weight=0.05"]


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, torch.nn.Module]:
    """A briefly trained run, exported with the CLI."""
    root = tmp_path_factory.mktemp("export")
    cfg = load_config(overrides=TINY)
    Trainer(cfg, root / "run", show_progress=False).train()
    assert export_main([str(root / "run")]) == 0
    _, policy, _ = load_run(root / "run")
    return root / "run" / "exported" / MODEL_NAME, policy


def _recorded_student_obs(steps: int = 12) -> dict[str, np.ndarray]:
    """Student observations of a few drones flying random actions."""
    env = QuadrotorVecEnv(num_envs=4, seed=3)
    obs, _ = env.reset(seed=3)
    rng = np.random.default_rng(0)
    images, states = [], []
    for _ in range(steps):
        images.append(obs["student"]["image"])
        states.append(obs["student"]["state"])
        obs, *_ = env.step(rng.uniform(-0.3, 0.3, (4, 4)).astype(np.float32))
    env.close()
    return {"image": np.concatenate(images), "state": np.concatenate(states)}


def test_onnx_matches_torch_on_recorded_observations(exported: tuple) -> None:
    model_path, policy = exported
    contract, session = load_policy(model_path)
    obs = _recorded_student_obs()
    assert obs["image"].std() > 0  # real camera images, not blank frames
    onnx_action = session.run(["action"], obs)[0]
    with torch.no_grad():
        mean = policy.decoder(policy.student_encoder(to_torch(obs))).clamp(-1.0, 1.0).numpy()
    assert onnx_action.shape == (len(obs["state"]), 4)
    assert np.abs(onnx_action - mean).max() <= 1e-5
    # One observation at a time (as on the robot) gives the same actions.
    single = session.run(["action"], {k: v[:1] for k, v in obs.items()})[0]
    assert np.abs(single - onnx_action[:1]).max() <= 1e-5


def test_evaluation_with_the_onnx_student_flies_the_torch_students_episodes(
        exported: tuple) -> None:
    """evaluate(..., student_actions=onnx_student_actions(model)): the exported graph in
    place of the torch networks (what bench/hil_success.py compares HIL with)."""
    model_path, policy = exported
    task = ("quadrotor", {"episode_steps": 40}, "student", 3, TEST_SEED)
    with_torch = evaluate(policy, *task)
    with_onnx = evaluate(policy, *task, student_actions=onnx_student_actions(model_path))
    np.testing.assert_array_equal(with_onnx.per_episode["l"], with_torch.per_episode["l"])
    np.testing.assert_allclose(with_onnx.per_episode["r"], with_torch.per_episode["r"],
                               atol=1e-3)
    with pytest.raises(ValueError, match="student_actions is for role 'student'"):
        evaluate(policy, "quadrotor", {}, "teacher", 1,
                 student_actions=onnx_student_actions(model_path))


def test_contract_round_trip_describes_the_graph(exported: tuple) -> None:
    model_path, _ = exported
    contract, session = load_policy(model_path)
    embedded = json.loads(session.get_modelmeta().custom_metadata_map["sitt_contract"])
    sidecar = json.loads(sidecar_path(model_path).read_text())
    assert sidecar.pop("model_sha256")
    assert embedded == sidecar == contract
    assert [i["name"] for i in contract["inputs"]] == ["image", "state"]
    assert contract["inputs"][0] == {"name": "image", "shape": ["batch", 64, 64, 3],
                                     "dtype": "uint8", "role": "camera"}
    # The state fields are the environment's, in its order, with their ROS sources.
    assert [f["name"] for f in contract["state_fields"]] == [f.name for f in
                                                              STUDENT_STATE_FIELDS]
    slices = field_slices(STUDENT_STATE_FIELDS)
    assert slices["altitude"] == slice(19, 20)
    assert contract["action"]["safe"] == [0.0, 0.0, 0.0, 0.0]
    assert contract["control_rate_hz"] == pytest.approx(50.0)
    assert contract["provenance"]["method"] == "sitt"
    # The run's task options, so that the sim bridge builds the same world.
    assert contract["provenance"]["task_options"] == {"deviation_weight": 0.05}


def test_tampered_or_corrupt_models_are_refused(exported: tuple, tmp_path: Path) -> None:
    model_path, _ = exported
    copy = tmp_path / MODEL_NAME
    shutil.copy(model_path, copy)
    shutil.copy(sidecar_path(model_path), sidecar_path(copy))
    load_policy(copy)  # the copy is fine
    data = bytearray(copy.read_bytes())
    data[len(data) // 2] ^= 0xFF
    copy.write_bytes(bytes(data))
    with pytest.raises(ContractError, match="SHA-256"):
        load_policy(copy)
    copy.write_bytes(b"not an onnx model")  # corrupt, with a matching hash
    side = json.loads(sidecar_path(copy).read_text())
    side["model_sha256"] = __import__("hashlib").sha256(b"not an onnx model").hexdigest()
    sidecar_path(copy).write_text(json.dumps(side))
    with pytest.raises(ContractError, match="onnxruntime cannot load"):
        load_policy(copy)
    with pytest.raises(ContractError, match="not found"):
        load_policy(tmp_path / "missing.onnx")


def test_contract_errors_name_the_problem(exported: tuple) -> None:
    model_path, _ = exported
    good = json.loads(sidecar_path(model_path).read_text())
    good.pop("model_sha256")
    validate_contract(json.loads(json.dumps(good)))
    broken = json.loads(json.dumps(good))
    del broken["action"]["safe"]
    with pytest.raises(ContractError, match=r"contract\.action: missing key\(s\) safe"):
        validate_contract(broken)
    broken = json.loads(json.dumps(good))
    broken["state_fields"].pop()
    with pytest.raises(ContractError, match="state fields add up to 19"):
        validate_contract(broken)
    broken = json.loads(json.dumps(good))
    broken["camera"]["encoding"] = "yuv422"
    with pytest.raises(ContractError, match="camera.encoding"):
        validate_contract(broken)
    broken = json.loads(json.dumps(good))
    broken["action"]["safe"][0] = 2.0
    with pytest.raises(ContractError, match="collective_thrust"):
        validate_contract(broken)
    # A contract whose inputs are not the graph's.
    session = ort.InferenceSession(str(model_path), providers=["CPUExecutionProvider"])
    renamed = json.loads(json.dumps(good))
    renamed["inputs"][0]["name"] = "rgb"
    with pytest.raises(ContractError, match="no input 'rgb'"):
        check_session(renamed, session)


def test_export_refuses_tasks_without_a_contract(tmp_path: Path) -> None:
    cfg = load_config(overrides=["task.num_envs=4", "task.student_envs=4"])  # color maze
    from sitt_training.envs import make_task

    env = make_task("color_maze", 1, 0)
    with pytest.raises(ValueError, match="continuous-action|policy_contract"):
        export_student(build_policy(cfg, env), env, tmp_path, {})
