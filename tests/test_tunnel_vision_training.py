"""TunnelVision presets learn: TSRA closes the imitation gap that BC leaves (TSRA paper,
table I), in a short run of the shipped presets."""

from pathlib import Path

import pytest

from sitt_training.config import load_config, preset_path
from sitt_training.evaluation import evaluate
from sitt_training.trainer import Trainer

ITERATIONS = 40  # of the presets' 100; enough for teacher and student on seed 0


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[float, float]]:
    """Test-seed success (teacher, student) of a short run of each preset."""
    results = {}
    for method in ("tsra", "bc"):
        cfg = load_config(preset_path("tunnel_vision", method),
                          [f"train.iterations={ITERATIONS}", "train.eval_every=0"])
        run: Path = tmp_path_factory.mktemp(method)
        trainer = Trainer(cfg, run, show_progress=False)
        trainer.train()
        results[method] = tuple(
            evaluate(trainer.policy, "tunnel_vision", {}, role, 200).success
            for role in ("teacher", "student"))
    return results


def test_tsra_teacher_and_student_both_learn(trained: dict) -> None:
    teacher, student = trained["tsra"]
    assert teacher >= 0.8 and student >= 0.8, trained


def test_bc_teacher_learns_but_its_student_cannot_follow(trained: dict) -> None:
    teacher, student = trained["bc"]
    assert teacher >= 0.8, trained
    assert student <= trained["tsra"][1] - 0.2, trained
