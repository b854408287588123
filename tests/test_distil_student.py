"""bench/distil_student.py: a fresh student distilled from a run's frozen teacher."""

import json
import sys
from pathlib import Path

import pytest
import torch

from sitt_training.cli import evaluate_run
from sitt_training.config import ConfigError, load_config
from sitt_training.trainer import BEST_MODEL, Trainer, checkpoints

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))

from distil_student import distil, distil_config, main  # noqa: E402

SOURCE = ["task.name=quadrotor", "task.num_envs=8", "task.student_envs=4", "method.name=sitt",
          "task.kwargs={episode_steps: 40}", "ppo.rollout_steps=8", "ppo.minibatches=2",
          "ppo.epochs=1", "method.align_iterations=4", "method.align_batch_size=32",
          "method.buffer_size=256", "network.hidden=[16]", "network.cnn_channels=[4, 4, 4, 4]",
          "train.iterations=2", "train.eval_every=1", "train.eval_episodes=2",
          "train.torch_threads=1", "train.checkpoint_buffer=false", "network.normalize_obs=true"]
TEACHER_PREFIXES = ("teacher_norm.", "teacher_encoder.", "decoder.", "critic.")


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny trained run. Its decoder starts near zero (gain 0.01) and has not moved far in
    two iterations; scaled up, the teacher's actions are large enough to imitate."""
    run = tmp_path_factory.mktemp("distil") / "sitt_s0"
    Trainer(load_config(overrides=SOURCE), run, show_progress=False).train()
    for path in [run / BEST_MODEL, *checkpoints(run)]:
        state = torch.load(path, weights_only=False)
        state["policy"]["decoder.linear.weight"] *= 100.0
        torch.save(state, path)
    return run


def _state(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, weights_only=False)["policy"]


def test_the_teacher_stays_frozen_and_a_fresh_student_learns(source, tmp_path) -> None:
    out = tmp_path / "out"
    report = distil(source, out, ["method.align_lr=0.003"], iterations=16, checkpoint="best",
                    episodes=4, show_progress=False)
    run = out / source.name
    cfg = load_config(run / "config.yaml")
    assert cfg.method.name == "bc" and cfg.train.iterations == 16
    assert cfg.method.align_lr == 0.003
    # The teacher (networks and normaliser) is the source's best, bit for bit, at every
    # checkpoint: no PPO update, no teacher normaliser update.
    teacher = {k: v for k, v in _state(source / BEST_MODEL).items()
               if k.startswith(TEACHER_PREFIXES)}
    assert any(k.startswith("teacher_norm.") for k in teacher)
    for path in [*checkpoints(run), run / BEST_MODEL]:
        state = _state(path)
        for key, value in teacher.items():
            assert torch.equal(state[key], value), (path.name, key)
    # The student is new (not the source's) and learns: its loss falls.
    source_student = {k: v for k, v in _state(source / BEST_MODEL).items()
                      if k.startswith("student_encoder.")}
    final = _state(checkpoints(run)[-1])
    assert any(not torch.equal(final[k], v) for k, v in source_student.items())
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    losses = [r["student/bc_loss"] for r in rows]
    assert len(losses) == 16 and sum(losses[-4:]) < 0.5 * sum(losses[:4]), losses
    # The teacher's test success is the source's (same teacher, same test episodes).
    assert report["teacher_success"] == evaluate_run(source, 4, checkpoint=Path("best"))[
        "teacher_success"]
    assert report["source_method"] == "sitt" and report["method"] == "bc"
    # Finished: read back, not trained again; other settings in the same folder: refused.
    mtime = checkpoints(run)[-1].stat().st_mtime_ns
    again = distil(source, out, ["method.align_lr=0.003"], iterations=16, checkpoint="best",
                   episodes=4, show_progress=False)
    assert again["student_success"] == report["student_success"]
    assert checkpoints(run)[-1].stat().st_mtime_ns == mtime
    with pytest.raises(ValueError, match="other settings"):
        distil(source, out, ["method.align_lr=0.002"], 16, "best", 4, show_progress=False)


def test_bad_requests_are_refused_by_name(source, tmp_path, capsys) -> None:
    with pytest.raises(ConfigError, match="method.name"):
        distil_config(source, ["method.name=sitt"], 5)
    with pytest.raises(ConfigError, match="no_such_key"):
        distil_config(source, ["train.no_such_key=1"], 5)
    assert main([str(tmp_path), "--out", str(tmp_path / "o")]) == 2
    assert "no config.yaml" in capsys.readouterr().err
    bare = tmp_path / "bare_s0"  # a config but no checkpoint yet
    bare.mkdir()
    (bare / "config.yaml").write_text((source / "config.yaml").read_text())
    for checkpoint, says in (("best", "no checkpoint best_model.pt"),
                             ("last", "no model_<iter>.pt checkpoint")):
        assert main([str(bare), "--out", str(tmp_path / "o"), "--checkpoint", checkpoint]) == 2
        assert says in capsys.readouterr().err and not (tmp_path / "o" / "bare_s0").exists()
    tsra = tmp_path / "tsra_s0"
    tsra.mkdir()
    (tsra / "config.yaml").write_text((source / "config.yaml").read_text()
                                      .replace("name: sitt", "name: tsra"))
    assert main([str(tsra), "--out", str(tmp_path / "o")]) == 2
    assert "not bc's" in capsys.readouterr().err
