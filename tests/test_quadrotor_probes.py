"""bench/quadrotor_kl_by_angle.py and bench/quadrotor_camera_information.py: the KL between
teacher and student by camera-velocity angle, for a run's student and for fresh probes."""

import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from sitt_training.config import load_config
from sitt_training.envs.quadrotor import MIN_SPEED_FOR_ANGLE
from sitt_training.envs.quadrotor_dynamics import yaw_to_quaternion
from sitt_training.trainer import Trainer

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))

import quadrotor_camera_information as info  # noqa: E402
from quadrotor_kl_by_angle import (  # noqa: E402
    ANGLE_EDGES,
    binned_table,
    camera_velocity_angle,
    kl_samples,
    teacher_actions,
)
from quadrotor_kl_by_angle import main as kl_main  # noqa: E402

TINY = ["task.name=quadrotor", "task.num_envs=8", "task.student_envs=4",
        "task.kwargs={episode_steps: 40}", "ppo.rollout_steps=8", "ppo.minibatches=2",
        "ppo.epochs=1", "method.align_iterations=2", "method.align_batch_size=16",
        "method.buffer_size=64", "network.hidden=[16]", "network.cnn_channels=[4, 4, 4, 4]",
        "train.iterations=2", "train.eval_every=1", "train.eval_episodes=2",
        "train.torch_threads=1", "train.checkpoint_buffer=false"]


def tiny_run(path: Path, method: str) -> Path:
    Trainer(load_config(overrides=[*TINY, f"method.name={method}"]), path,
            show_progress=False).train()
    return path


def test_the_angle_is_between_camera_axis_and_velocity_in_the_ground_plane() -> None:
    yaw = np.array([0.0, 0.0, 0.0, math.pi / 2, 0.0])
    velocity = np.array([[2.0, 0.0, 0.0],    # straight ahead
                         [-2.0, 0.0, 1.0],   # backwards (climbing does not count)
                         [0.0, 3.0, 0.0],    # sideways
                         [0.0, 3.0, 0.0],    # ahead after a 90 degree yaw
                         [MIN_SPEED_FOR_ANGLE / 2, 0.0, 0.0]])  # too slow: undefined
    angle = camera_velocity_angle(yaw_to_quaternion(yaw), velocity)
    np.testing.assert_allclose(angle[:4], [0.0, 180.0, 90.0, 0.0], atol=1e-6)
    assert math.isnan(angle[4])


def test_binned_table_counts_and_averages_each_bin() -> None:
    samples = {"angle": np.array([5.0, 10.0, 20.0, 180.0, 100.0, np.nan]),
               "near": np.array([True, True, True, True, False, False]),
               "kl": np.array([1.0, 3.0, 5.0, 7.0, 9.0, 11.0])}
    rows = binned_table(samples, ("kl",))
    assert len(rows) == 2 * (len(ANGLE_EDGES) - 1)
    by = {(r["pillar"], r["angle_deg"]): r for r in rows}
    assert by["near", "0-15"]["steps"] == 2 and by["near", "0-15"]["kl"] == 2.0
    assert by["near", "15-30"]["kl"] == 5.0
    assert by["near", "90-180"]["steps"] == 1  # the top edge belongs to the last bin
    assert by["far", "90-180"]["kl"] == 9.0
    assert by["far", "0-15"]["steps"] == 0 and math.isnan(by["far", "0-15"]["kl"])
    # The undefined angle is in no bin; shares are of the steps with an angle.
    assert sum(r["steps"] for r in rows) == 5
    assert math.isclose(sum(r["share"] for r in rows), 1.0)


def test_kl_by_angle_on_sitt_and_bc_runs(tmp_path, capsys) -> None:
    sitt = tiny_run(tmp_path / "sitt", "sitt")
    samples = kl_samples(sitt, "best", episodes=3, near=5.0)
    assert set(samples) == {"angle", "near", "kl_student", "kl_proxy"}
    steps = len(samples["angle"])
    assert 3 <= steps <= 3 * 40  # one row per live step of the three flights
    assert all(len(v) == steps for v in samples.values())
    assert (samples["kl_student"] >= 0).all() and (samples["kl_proxy"] >= 0).all()
    # The student reads its images and the proxy the teacher's state: different KLs.
    assert not np.allclose(samples["kl_student"], samples["kl_proxy"])

    bc = tiny_run(tmp_path / "bc", "bc")
    assert "kl_proxy" not in kl_samples(bc, "best", episodes=2, near=5.0)  # untrained
    mean_flights = kl_samples(sitt, "best", episodes=3, near=5.0, actions="deterministic")
    assert not np.array_equal(mean_flights["kl_student"][:steps], samples["kl_student"])
    assert kl_main([str(sitt), "--episodes", "2", "--json", str(tmp_path / "k.json")]) == 0
    out = capsys.readouterr().out
    assert "KL teacher-proxy" in out and "| near | 0-15 |" in out
    assert len(json.loads((tmp_path / "k.json").read_text())["rows"]) == 10
    assert kl_main([str(tmp_path / "missing")]) == 2


def test_teacher_actions_are_its_mean_or_a_sample_with_the_decoder_std(tmp_path) -> None:
    from sitt_training.cli import load_run

    _, policy, _ = load_run(tiny_run(tmp_path / "bc", "bc"), None)
    out = torch.zeros(20000, policy.decoder.spec.n)
    np.testing.assert_array_equal(teacher_actions(policy, out, "deterministic"), 0.0)
    sampled = teacher_actions(policy, out, "sampled")
    std = policy.decoder.effective_log_std().exp().detach().numpy()
    np.testing.assert_allclose(sampled.std(axis=0), std, rtol=0.05)
    with pytest.raises(ValueError, match="actions must be one of"):
        teacher_actions(policy, out, "greedy")


def test_a_fresh_probe_student_keeps_the_teacher_and_decoder(tmp_path) -> None:
    run = tiny_run(tmp_path / "sitt", "sitt")  # SITT trains the proxy, so it must change
    trained, flights = info.teacher_flights(run, "best", episodes=2, seed=7, stride=3,
                                            near=5.0)
    assert flights["image"].dtype == np.uint8 and flights["image"].any(axis=(1, 2, 3)).all()
    assert len({len(v) for v in flights.values()}) == 1  # one row per kept step
    fresh = info.fresh_student(run, trained, seed=0)
    old, new = trained.state_dict(), fresh.state_dict()
    for key in old:
        same = torch.equal(old[key], new[key])
        assert same != key.startswith(("student_encoder.", "proxy_encoder.")), key
    # The blank student cannot tell two flights apart by their images.
    blank = info.blank_frame(flights["image"])
    assert len(np.unique(blank.reshape(-1, 3), axis=0)) == 1
    shuffled = {**flights, "image": flights["image"][::-1].copy()}
    np.testing.assert_array_equal(info.held_out_kl(fresh, "blank", flights, blank),
                                  info.held_out_kl(fresh, "blank", shuffled, blank))
    assert not np.array_equal(info.held_out_kl(fresh, "camera", flights, blank),
                              info.held_out_kl(fresh, "camera", shuffled, blank))
    # The privileged student reads the teacher's observation, not the images.
    np.testing.assert_array_equal(info.held_out_kl(fresh, "privileged", flights, blank),
                                  info.held_out_kl(fresh, "privileged", shuffled, blank))


def test_the_camera_information_probe_trains_both_students(tmp_path, capsys) -> None:
    run = tiny_run(tmp_path / "bc", "bc")
    out_json = tmp_path / "c.json"
    assert info.main([str(run), "--episodes", "3", "--test-episodes", "2", "--stride", "2",
                      "--epochs", "3", "--batch", "8", "--json", str(out_json)]) == 0
    out = capsys.readouterr().out
    assert "KL, camera student" in out and "blank - camera" in out
    result = json.loads(out_json.read_text())
    assert set(result["mean_kl"]) == {"camera", "blank", "privileged"}
    # Same initialisation and batches: the two students differ only through the images.
    assert result["mean_kl"]["camera"] != result["mean_kl"]["blank"]
    with pytest.raises(SystemExit):
        info.main([str(run), "--epochs", "0"])


def test_the_privileged_probe_learns_the_teacher_from_its_own_observation(tmp_path) -> None:
    """Real learning: with the teacher's observation the probe's KL falls with training."""
    run = tiny_run(tmp_path / "bc", "bc")
    trained, train = info.teacher_flights(run, "best", episodes=4, seed=7, stride=1,
                                          near=5.0)
    short = info.train_students(run, trained, 1e-3, train, train, epochs=1, batch=16, seed=0,
                                students=("privileged",))
    longer = info.train_students(run, trained, 1e-3, train, train, epochs=30, batch=16,
                                 seed=0, students=("privileged",))
    assert longer["privileged"].mean() < 0.5 * short["privileged"].mean()
