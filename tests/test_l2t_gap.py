"""bench/l2t_gap.py: the common scale for L2T's student-teacher gap, and its random policy."""

import json
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / 'bench'))

from l2t_gap import kept_fraction, latest_rows, random_return, report  # noqa: E402


def test_kept_fraction_by_hand():
    # Teacher 100 above random, student 60 above it: keeps 0.6 of the improvement.
    assert kept_fraction(teacher=-100.0, student=-140.0, random=-200.0) == pytest.approx(0.6)
    assert kept_fraction(teacher=8840.0, student=5896.0, random=-300.0) == \
        pytest.approx(6196.0 / 9140.0)


def test_random_policy_is_reproducible_and_far_below_a_swing_up():
    first = random_return('pendulum', {'noise_alpha': 0.4}, 3)
    assert first == random_return('pendulum', {'noise_alpha': 0.4}, 3)
    # Pendulum's reward is at most 0 per step; random torques never swing up and hold
    # (about -1200 over 200 steps; a swing-up policy gets about -150).
    assert -2000.0 < first < -600.0


def test_rows_are_the_newest_per_method_and_seed(tmp_path):
    def row(method, seed, teacher, checkpoint='best', task='pendulum', status='ok'):
        return {'task': task, 'method': method, 'seed': seed, 'status': status,
                'checkpoint': checkpoint, 'episodes': 4, 'teacher_return': teacher,
                'student_return': teacher - 50.0}
    lines = [row('l2t', 0, -300.0), row('l2t', 0, -150.0), row('l2t', 1, -160.0),
             row('l2t', 2, -170.0, checkpoint='last'), row('cosil', 0, -155.0),
             row('l2t', 3, -1.0, task='half_cheetah'), row('l2t', 4, -1.0, status='failed')]
    (tmp_path / 'cells.jsonl').write_text('\n'.join(map(json.dumps, lines)) + '\n')
    rows = latest_rows(tmp_path, 'pendulum', 'best')
    assert [(r['method'], r['seed'], r['teacher_return']) for r in rows] == [
        ('cosil', 0, -155.0), ('l2t', 0, -150.0), ('l2t', 1, -160.0)]
    table = '\n'.join(report(rows, random=-1150.0, paper_random=-300.0))
    assert '| l2t | 0 | -150.0 | -200.0 | 0 | 0.950 |' in table
    assert '**l2t, mean ± std** | 2 seeds' in table
