"""bench/sac_vs_sb3.py: Stable-Baselines3's SAC beside our runs' validation returns."""

import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / 'bench'))

from sac_vs_sb3 import main, our_curve  # noqa: E402


def test_our_curve_is_the_teachers_validation_return_by_steps(tmp_path):
    rows = [{'iteration': 1, 'env_steps': 1000},
            {'iteration': 2, 'env_steps': 2000, 'eval/teacher_return': 12.5},
            {'iteration': 3, 'env_steps': 3000},
            {'iteration': 4, 'env_steps': 4000, 'eval/teacher_return': -3.0}]
    (tmp_path / 'metrics.jsonl').write_text(''.join(json.dumps(r) + '\n' for r in rows))
    assert our_curve(tmp_path) == {2000: 12.5, 4000: -3.0}


def test_a_short_sb3_run_is_tabled_beside_ours(tmp_path, capsys):
    run = tmp_path / 'l2t_s0'
    run.mkdir()
    (run / 'metrics.jsonl').write_text(json.dumps(
        {'iteration': 1, 'env_steps': 1000, 'eval/teacher_return': 42.0}) + '\n')
    assert main(['--steps', '1000', '--eval-every', '1000', '--ours', str(run)]) == 0
    table = capsys.readouterr().out
    assert '| steps | SB3 SAC s0 | ours l2t_s0 |' in table
    line = next(x for x in table.splitlines() if x.startswith('| 1,000 |'))
    sb3_return = float(line.split('|')[2])
    assert -2000 < sb3_return < 2000 and line.endswith('| 42 |')


def test_bad_arguments_are_errors(tmp_path, capsys):
    assert main(['--steps', '500', '--eval-every', '1000']) == 2
    assert main(['--ours', str(tmp_path / 'missing')]) == 2
    assert 'no metrics.jsonl' in capsys.readouterr().err
