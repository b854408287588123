"""bench/quadrotor_blind_lines.py: straight blind lines against hand-placed pillars."""

import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))

from quadrotor_blind_lines import line_passes, main, path_passes  # noqa: E402

FAR = [[25.0, 25.0]] * 3  # three pillars out of every line's way


def test_a_pillar_on_the_path_blocks_the_command_line_only() -> None:
    # Command +x at 1 m/s for 20 s from the origin; a pillar 8 m ahead, 0.5 m to the left.
    starts, commands = np.zeros((1, 2)), np.array([[1.0, 0.0]])
    pillars = np.array([[[8.0, 0.5], *FAR]])
    passes = line_passes(starts, commands, pillars, np.array([-30.0, 0.0, 30.0]), 20.0)
    # At -30 deg the line is 4.6 m right of the pillar at x = 8; at +30 deg it is 4.1 m
    # left of it; both clear 1.65 m. Flying the command hits it.
    assert passes.tolist() == [[True, False, True]]


def test_a_pillar_beside_the_path_blocks_the_line_that_crosses_it() -> None:
    starts, commands = np.zeros((1, 2)), np.array([[0.0, 1.0]])  # command +y
    # Left of +y is -x: a pillar at (-5, 8.7) sits on the +30 deg line (tan 30 * 8.7 = 5).
    pillars = np.array([[[-5.0, 8.7], *FAR]])
    passes = line_passes(starts, commands, pillars, np.array([-30.0, 0.0, 30.0]), 20.0)
    assert passes.tolist() == [[True, True, False]]


def test_leaving_the_box_fails() -> None:
    # From x = 20 m, 20 m along +x ends at x = 40 m, outside the 30 m half-size.
    passes = line_passes(np.array([[20.0, 0.0]]), np.array([[1.0, 0.0]]),
                         np.array([[*FAR, [-25.0, -25.0]]]), np.array([0.0]), 20.0)
    assert not passes.any()


def test_the_table_covers_the_test_layouts(capsys) -> None:
    assert main(["--layouts", "50", "--max-angle", "10", "--step", "5"]) == 0
    out = capsys.readouterr().out
    assert "| -10 | -5 | +0 | +5 | +10 |" in out
    # The first pillar stands on the commanded line in every layout.
    assert "| layouts passed | " in out and " 0.00 |" in out.split("| layouts passed |")[1]


def test_other_pillar_ranges_place_the_other_pillars() -> None:
    from sitt_training.envs.quadrotor_world import sample_layouts

    ids = np.arange(40)
    commands, starts, _, pillars = sample_layouts(5, ids, np.zeros_like(ids),
                                                  other_along=(10.0, 20.0), other_lateral=8.0)
    d = commands[:, :2] / np.linalg.norm(commands[:, :2], axis=1, keepdims=True)
    n = np.stack([-d[:, 1], d[:, 0]], axis=1)
    rel = pillars[:, 1:] - starts[:, None, :2]  # the three pillars after the first
    along = np.einsum("npk,nk->np", rel, d)
    lateral = np.einsum("npk,nk->np", rel, n)
    assert (along >= 10.0 - 1e-9).all() and (along <= 20.0 + 1e-9).all()
    assert (np.abs(lateral) <= 8.0 + 1e-9).all()
    # Other ranges move the other pillars; the first is drawn before them and stays.
    default = sample_layouts(5, ids, np.zeros_like(ids))[3]
    assert not np.allclose(default, pillars)
    np.testing.assert_array_equal(default[:, 0], pillars[:, 0])  # the first pillar is kept


def test_a_sidestep_passes_and_its_mean_distance_from_the_line_is_exact() -> None:
    starts, commands = np.zeros((1, 2)), np.array([[1.0, 0.0]])
    pillars = np.array([[[8.0, 0.5], *FAR]])
    # Straight on hits; 80 deg to the right for 1 m along (5.67 m aside), then parallel to
    # the command, clears it.
    ok, offset = path_passes(starts, commands, pillars, np.array([[0.0, 1.0, 0.0],
                                                                 [-80.0, 1.0, 0.0]]), 20.0)
    aside = np.tan(np.radians(80.0))
    assert ok.tolist() == [[False, True]]
    np.testing.assert_allclose(offset, [[0.0, (1.0 * aside / 2 + 19.0 * aside) / 20.0]])
    # Out and back across the line: 20 deg left for 10 m, then 20 deg right: a triangle.
    _, offset = path_passes(starts, commands, pillars, np.array([[20.0, 10.0, -20.0]]), 20.0)
    np.testing.assert_allclose(offset, [[np.tan(np.radians(20.0)) * 10.0 / 2]])
    # Crossing the line: mean |x| of a line from +a to -a is a / 2.
    _, offset = path_passes(starts, commands, pillars, np.array([[0.0, 0.0, 10.0],
                                                                [20.0, 10.0, -40.0]]), 20.0)
    a = np.tan(np.radians(20.0)) * 10.0  # lateral at the corner; the end is a - 10 tan 40
    b = a - 10.0 * np.tan(np.radians(40.0))
    second = (a * a + b * b) / (2 * (abs(a) + abs(b)))
    np.testing.assert_allclose(offset[0, 1], (10.0 * a / 2 + 10.0 * second) / 20.0)


def test_two_segment_paths_with_one_angle_are_the_straight_lines() -> None:
    from sitt_training.envs.quadrotor_world import sample_layouts

    ids = np.arange(60)
    commands, starts, _, pillars = sample_layouts(9, ids, np.zeros_like(ids))
    angles = np.array([-40.0, -20.0, 0.0, 25.0, 40.0])
    lines = line_passes(starts[:, :2], commands[:, :2], pillars, angles, 20.0)
    paths = np.stack([angles, np.full_like(angles, 7.0), angles], axis=1)
    ok, _ = path_passes(starts[:, :2], commands[:, :2], pillars, paths, 20.0)
    np.testing.assert_array_equal(ok, lines)
    assert 0 < lines.mean() < 1


def test_the_two_segment_table_lists_the_offset_limits(capsys) -> None:
    assert main(["--layouts", "30", "--max-angle", "10", "--step", "10", "--two-segment"]) == 0
    out = capsys.readouterr().out.split("fixed two-segment paths")[1]
    rows = [line for line in out.splitlines() if line.startswith("| ") and "°" in line]
    assert [r.split(" | ")[0] for r in rows][-1] == "| any"
    rates = [float(r.split(" | ")[2]) for r in rows]
    assert rates == sorted(rates)  # a looser limit never passes fewer layouts
