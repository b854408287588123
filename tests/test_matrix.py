"""sitt-bench, the benchmark matrix: real training and evaluation on tunnel_vision (2
iterations), through the console script, on local processes and on a real local Ray
instance."""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from sitt_training import bench_record
from sitt_training.matrix import main

VENV_BIN = Path(sys.executable).parent
TINY = ['--tasks', 'tunnel_vision', '--set', 'train.iterations=2', '--set', 'train.eval_every=0',
        '--episodes', '20', '--workers', '2']
STEPS = 2 * 64 * 256  # iterations x rollout_steps x num_envs of the tunnel_vision presets


def bench(args, cwd, docs, timeout=240):
    env = dict(os.environ, SITT_DOCS_DIR=str(docs), PYTHONUNBUFFERED='1')
    return subprocess.run([str(VENV_BIN / 'sitt-bench'), *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)


def read_rows(out):
    return [json.loads(line) for line in (out / 'cells.jsonl').read_text().splitlines()]


def mean_std(values):
    return f'{np.mean(values):.3f} ± {np.std(values):.3f}'


ERROR = ('ValueError: train.seed must be < 1000000 (higher seeds are reserved for evaluation), '
         'got 1000000')
FAILED = f'- FAILED: `{{}}` seed 1000000 after 3 attempts: {ERROR}'


@pytest.fixture(scope='module')
def local_matrix(tmp_path_factory):
    """bc and tsra x seeds 0, 1 and 1000000 on 2 local worker processes. The last seed is a
    real failure: it loads as a config, but the trainer refuses it (evaluation seeds start
    there), on every attempt."""
    tmp = tmp_path_factory.mktemp('matrix')
    args = [*TINY, '--methods', 'bc', 'tsra', '--seeds', '0', '1', '1000000', '--retries', '2',
            '--set', 'train.eval_every=1', '--set', 'train.eval_episodes=5',
            '--out', 'out', '--write-docs', '--progress-every', '0.2']
    proc = bench(args, tmp, tmp / 'docs')
    assert proc.returncode == 1, proc.stdout + proc.stderr  # a cell failed
    return tmp, args, proc


def test_local_matrix_rows_table_and_run_dirs(local_matrix):
    tmp, _, proc = local_matrix
    out = tmp / 'out'
    rows = [r for r in read_rows(out) if r['status'] == 'ok']
    assert sorted((r['method'], r['seed']) for r in rows) == [
        ('bc', 0), ('bc', 1), ('tsra', 0), ('tsra', 1)]
    for row in rows:
        assert row['attempts'] == 1
        assert row['task'] == 'tunnel_vision' and row['episodes'] == 20
        assert row['env_steps'] == row['student_samples'] == STEPS
        assert row['gap'] == pytest.approx(row['teacher_success'] - row['student_success'])
        assert [m['iteration'] for m in row['metrics']] == [1, 2]  # the learning curve
        assert 'eval/student_success' in row['metrics'][-1]
        run_dir = out / 'tunnel_vision' / f"{row['method']}_s{row['seed']}"
        assert Path(row['run_dir']) == run_dir.resolve()
        assert (run_dir / 'model_2.pt').is_file()
        cached = json.loads((run_dir / 'test_20.json').read_text())
        assert cached['student_success'] == row['student_success']
        assert f"seed: {row['seed']}" in (run_dir / 'config.yaml').read_text()
    for method in ('bc', 'tsra'):
        mine = [r for r in rows if r['method'] == method]
        cells = [mean_std([r[k] for r in mine])
                 for k in ('teacher_success', 'student_success', 'gap')]
        line = f"| {method} | {' | '.join(cells)} | 2 / 3 (1 FAILED) | 32.8k | 32.8k |"
        assert line in proc.stdout.splitlines(), proc.stdout
    assert f'Equal budgets: every finished run used {STEPS:,} environment steps' in proc.stdout
    assert (out / 'tunnel_vision' / 'success.png').is_file()
    # while cells run, the bar names each with its iteration (read from its metrics.jsonl)
    assert re.search(r'running: (bc|tsra)_s[01] [12]/2', proc.stderr), proc.stderr[-3000:]


def test_cell_progress_reads_the_end_of_a_growing_metrics_file(tmp_path) -> None:
    from sitt_training.matrix import Cell, Settings, cell_progress

    cell = Cell('arm_drawer', 'sitt', 3, config={'train': {'iterations': 600}})
    settings = Settings(tmp_path, 200, 'best', ())
    assert cell_progress(cell, settings) == 'sitt_s3'  # no run directory yet
    metrics = tmp_path / 'arm_drawer' / 'sitt_s3' / 'metrics.jsonl'
    metrics.parent.mkdir(parents=True)
    metrics.write_text('')
    assert cell_progress(cell, settings) == 'sitt_s3'
    padding = 'x' * 5000  # rows of a few kB: 30 of them pass the 64 kB read from the end
    rows = [{'iteration': i, 'wall_time': 4.0 * i, 'pad': padding} for i in range(1, 31)]
    metrics.write_text(''.join(json.dumps(r) + '\n' for r in rows) + '{"iteration": 31, "wa')
    # the half-written row is skipped; 4 s per iteration x 570 left = 38 min
    assert cell_progress(cell, settings) == 'sitt_s3 30/600 ~38 min left'
    fast = [{'iteration': i, 'wall_time': 0.01 * i} for i in (598, 599)]
    metrics.write_text(''.join(json.dumps(r) + '\n' for r in fast))
    assert cell_progress(cell, settings) == 'sitt_s3 599/600 ~0 s left'
    slow = [{'iteration': i, 'wall_time': 60.0 * i} for i in (8, 9)]
    metrics.write_text(''.join(json.dumps(r) + '\n' for r in slow))
    assert cell_progress(cell, settings) == 'sitt_s3 9/600 ~9.8 h left'
    metrics.write_text(json.dumps({'iteration': 7, 'wall_time': 2.0}) + '\n')
    assert cell_progress(cell, settings) == 'sitt_s3 7/600'  # one row: no rate yet


def test_failing_cell_is_retried_then_reported(local_matrix):
    tmp, args, proc = local_matrix
    failed = [r for r in read_rows(tmp / 'out') if r['status'] != 'ok']
    assert sorted(r['method'] for r in failed) == ['bc', 'tsra']
    for row in failed:
        assert row['seed'] == 1000000 and row['status'] == 'failed' and row['attempts'] == 3
        assert row['error'] == ERROR
        assert 'trainer.py' in row['traceback']
        for attempt in (1, 2):
            assert f"{row['method']}_s1000000: attempt {attempt} failed" in proc.stdout
        assert FAILED.format(row['method']) in proc.stdout
    # the docs section, in the temporary docs folder
    docs = tmp / 'docs'
    text = (docs / 'results.md').read_text()
    section = text[text.index('<!-- matrix_tunnel_vision:begin -->'):
                   text.index('<!-- matrix_tunnel_vision:end -->')]
    assert f"Command: `sitt-bench {' '.join(args)}`" in section
    assert FAILED.format('bc') in section and FAILED.format('tsra') in section
    assert '| 2 / 3 (1 FAILED) |' in section
    assert sorted(p.name for p in docs.iterdir()) == [
        'matrix_tunnel_vision_learning_curves.png', 'matrix_tunnel_vision_success.png',
        'results.md']
    assert '(matrix_tunnel_vision_learning_curves.png)' in section
    assert '(matrix_tunnel_vision_success.png)' in section


def test_rerun_skips_finished_cells(local_matrix):
    """Finished cells come from cells.jsonl (nothing trained, evaluated or rewritten);
    failed ones are tried again."""
    tmp, args, first = local_matrix
    out = tmp / 'out'
    runs = sorted((out / 'tunnel_vision').glob('*_s[01]'))
    before = {p: p.stat().st_mtime_ns for run in runs for p in run.rglob('*')}
    lines = (out / 'cells.jsonl').read_text().splitlines()
    proc = bench(args, tmp, tmp / 'docs')
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert '6 cells, 4 already finished' in proc.stdout
    after = {p: p.stat().st_mtime_ns for run in runs for p in run.rglob('*')}
    assert after == before
    new = (out / 'cells.jsonl').read_text().splitlines()
    assert new[:len(lines)] == lines
    assert sorted((r['seed'], r['status']) for r in map(json.loads, new[len(lines):])) == [
        (1000000, 'failed'), (1000000, 'failed')]
    table = [line for line in proc.stdout.splitlines() if line.startswith('| ')]
    assert table == [line for line in first.stdout.splitlines() if line.startswith('| ')]


def test_a_row_of_another_config_is_not_reused(local_matrix, tmp_path):
    """A finished row counts only while its recorded config resolves to the cell's config
    (a preset changed since): that cell is done again, here from its finished run
    directory, and gets a new row. An option added since the row was written takes its
    default, so that row still counts."""
    src, _, _ = local_matrix
    shutil.copytree(src / 'out', tmp_path / 'out')
    rows = read_rows(tmp_path / 'out')
    for row in rows:
        if (row['method'], row['seed']) == ('bc', 0):
            del row['config']['method']['kl_reward_terminal']  # written before the option
        if (row['method'], row['seed']) == ('bc', 1):
            row['config']['ppo']['gamma'] = 0.5
    (tmp_path / 'out' / 'cells.jsonl').write_text(''.join(json.dumps(r) + '\n' for r in rows))
    args = [*TINY, '--methods', 'bc', '--seeds', '0', '1', '--set', 'train.eval_every=1',
            '--set', 'train.eval_episodes=5', '--out', 'out']
    proc = bench(args, tmp_path, tmp_path / 'docs')
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert '2 cells, 1 already finished' in proc.stdout
    new = read_rows(tmp_path / 'out')[len(rows):]
    assert [(r['method'], r['seed'], r['status']) for r in new] == [('bc', 1, 'ok')]
    assert new[0]['config']['ppo']['gamma'] != 0.5


def test_record_carries_finished_cells_to_another_machine(local_matrix, tmp_path):
    """--record keeps each finished row (metrics cut to its validations) in a file for git:
    --recorded-only moves OUT's finished cells there and names the others without training
    them; on a machine without OUT, the recorded cells are skipped and a new one is added."""
    src, _, _ = local_matrix
    shutil.copytree(src / 'out', tmp_path / 'out')
    record = tmp_path / 'record'
    args = [*TINY, '--methods', 'bc', '--seeds', '0', '1', '2', '--set', 'train.eval_every=1',
            '--set', 'train.eval_episodes=5', '--out', 'out', '--record', 'record']
    only = bench([*args, '--recorded-only'], tmp_path, tmp_path / 'docs')
    assert only.returncode == 0, only.stdout + only.stderr
    assert 'not run yet: tunnel_vision/bc_s2' in only.stdout
    assert 'Not run yet: `bc` seed 2.' in only.stdout
    assert '| bc | ' in only.stdout and '| 2 / 3 |' in only.stdout
    assert not (tmp_path / 'out' / 'tunnel_vision' / 'bc_s2').exists()
    full = {r['seed']: r for r in read_rows(tmp_path / 'out')
            if r['method'] == 'bc' and r['status'] == 'ok'}
    kept = bench_record.load(record)
    assert sorted(r['seed'] for r in kept) == [0, 1]
    for row in kept:
        assert row['metrics'] == bench_record.validation_curve(full[row['seed']]['metrics'])
        assert row['metrics'] and 'eval/student_success' in row['metrics'][-1]
        assert {k: v for k, v in row.items() if k != 'metrics'} == \
            {k: v for k, v in full[row['seed']].items() if k != 'metrics'}

    shutil.rmtree(tmp_path / 'out')  # another machine
    proc = bench([*args, '--write-docs'], tmp_path, tmp_path / 'docs')
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert '3 cells, 2 already finished' in proc.stdout
    assert not (tmp_path / 'out' / 'tunnel_vision' / 'bc_s0').exists()
    assert (tmp_path / 'out' / 'tunnel_vision' / 'bc_s2' / 'model_2.pt').is_file()
    kept = bench_record.load(record)
    assert [r['seed'] for r in kept] == [0, 1, 2]
    cells = [mean_std([r[k] for r in kept]) for k in ('teacher_success', 'student_success', 'gap')]
    assert f"| bc | {' | '.join(cells)} | 3 / 3 |" in proc.stdout
    section = (tmp_path / 'docs' / 'results.md').read_text()
    assert 'Not run yet' not in section
    assert (tmp_path / 'docs' / 'matrix_tunnel_vision_learning_curves.png').is_file()
    again = bench([*args, '--recorded-only'], tmp_path, tmp_path / 'docs')
    assert again.returncode == 0 and '3 cells, 3 already finished' in again.stdout
    assert len(bench_record.load(record)) == 3


def test_a_rows_identity_is_the_settings_fields() -> None:
    from sitt_training.matrix import Cell, Settings

    settings = Settings(Path('/tmp/out'), 5, 'best', ('train.iterations=2',))
    assert tuple(settings.fields(Cell('tunnel_vision', 'bc', 3))) == Settings.IDENTITY


def test_docs_variant_writes_its_own_section(local_matrix):
    """--docs-variant NAME writes matrix_<task>_NAME and its figures beside the plain
    section (finished cells only: nothing is trained)."""
    tmp, args, _ = local_matrix
    docs = tmp / 'docs'
    plain = (docs / 'results.md').read_text()
    plain_section = plain[plain.index('<!-- matrix_tunnel_vision:begin -->'):
                          plain.index('<!-- matrix_tunnel_vision:end -->')]
    rerun = [*args[:args.index('--seeds')], '--seeds', '0', '1',
             *args[args.index('--retries'):], '--docs-variant', 'again']
    proc = bench(rerun, tmp, docs)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    text = (docs / 'results.md').read_text()
    section = text[text.index('<!-- matrix_tunnel_vision_again:begin -->'):
                   text.index('<!-- matrix_tunnel_vision_again:end -->')]
    assert section.splitlines()[1] == '## Benchmark matrix: tunnel_vision (again)'
    assert '(matrix_tunnel_vision_again_success.png)' in section
    assert (docs / 'matrix_tunnel_vision_again_success.png').is_file()
    assert plain_section in text  # the plain section is left as it was


def test_ray_local_gives_the_same_rows(local_matrix, tmp_path):
    """The same matrix as Ray tasks on a real local Ray instance: the same numbers (each
    run is deterministic with one torch thread), the same failures and attempts."""
    tmp, args, _ = local_matrix
    token = Path.home() / '.ray' / 'auth_token'
    had_token = token.exists()
    proc = bench([*args, '--ray', 'local'], tmp_path, tmp_path / 'docs')
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert 'Ray: a local instance on 127.0.0.1 only' in proc.stdout
    temp_dir = proc.stdout.split('temp dir ')[1].split(')')[0]
    assert not Path(temp_dir).exists()  # removed after ray.shutdown()
    assert token.exists() == had_token  # the token lived in the environment only

    def numbers(out):
        return sorted((r['method'], r['seed'], r['status'], r['attempts'],
                       r.get('teacher_success'), r.get('student_success'), r.get('error'),
                       r.get('env_steps'), r.get('student_samples'))
                      for r in read_rows(out)[:6])

    assert numbers(tmp_path / 'out') == numbers(tmp / 'out')
    assert (tmp_path / 'docs' / 'matrix_tunnel_vision_success.png').is_file()


def test_ctrl_c_stops_cells_with_a_checkpoint(tmp_path):
    """SIGINT to the driver: the running cell's trainer finishes its iteration, saves a
    checkpoint and stops; nothing is reported as finished; exit status 130."""
    args = ['--tasks', 'tunnel_vision', '--methods', 'bc', '--seeds', '0', '--out', 'out',
            '--set', 'train.iterations=500', '--set', 'train.eval_every=0',
            '--set', 'train.checkpoint_every=1000']
    env = dict(os.environ, SITT_DOCS_DIR=str(tmp_path / 'docs'), PYTHONUNBUFFERED='1')
    proc = subprocess.Popen([str(VENV_BIN / 'sitt-bench'), *args], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    metrics = tmp_path / 'out' / 'tunnel_vision' / 'bc_s0' / 'metrics.jsonl'
    deadline = time.monotonic() + 90
    while not (metrics.is_file() and metrics.read_text().strip()):
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.2)
    status = Path(f'/proc/{proc.pid}/status').read_text()
    masks = [line for line in status.splitlines() if line.startswith(('SigBlk', 'SigIgn'))]
    proc.send_signal(signal.SIGINT)
    try:
        stdout, stderr = proc.communicate(timeout=120)
    except subprocess.TimeoutExpired:  # its cell holds the pipes: no communicate() here
        proc.kill()
        rows = len(metrics.read_text().splitlines())
        pytest.fail(f'no exit 120 s after SIGINT ({rows} iterations logged; driver {masks})')
    assert proc.returncode == 130, stdout + stderr
    saved = sorted(metrics.parent.glob('model_*.pt'))
    assert len(saved) == 1 and 0 < int(saved[0].stem.split('_')[1]) < 500
    assert not (tmp_path / 'out' / 'cells.jsonl').exists()
    assert 'run the same command again to continue' in stderr


def test_missing_preset_is_an_error_before_anything_starts(tmp_path, capsys):
    out = tmp_path / 'out'
    assert main(['--tasks', 'color_maze', '--methods', 'sitt', 'tsra', '--out', str(out)]) == 2
    assert 'color_maze_tsra.yaml' in capsys.readouterr().err
    assert not out.exists()
    assert main(['--tasks', 'tunnel_vision', '--set', 'train.iteratons=2',
                 '--out', str(out)]) == 2
    assert "did you mean 'iterations'" in capsys.readouterr().err
    assert not out.exists()


def test_tasks_without_a_success_flag_compare_test_returns(tmp_path):
    """half_cheetah-like tasks report success NaN: the table compares returns instead."""
    from sitt_training.matrix import task_table
    rows = [{'method': 'l2t', 'seed': s, 'status': 'ok', 'teacher_success': float('nan'),
             'student_success': float('nan'), 'gap': float('nan'), 'teacher_return': t,
             'student_return': st, 'env_steps': 100, 'student_samples': 100}
            for s, t, st in ((0, 10.0, 4.0), (1, 20.0, 8.0))]
    table = '\n'.join(task_table(['l2t'], [0, 1], rows))
    assert '| method | teacher return | student return | gap |' in table
    assert f'| l2t | {mean_std([10, 20])} | {mean_std([4, 8])} | {mean_std([6, 12])} |' in table
    assert '| method | seed 0 | seed 1 |\n|---|---|---|\n| l2t | 10.0 / 4.0 | 20.0 / 8.0 |' in table


def test_progress_summary_shows_returns_for_tasks_without_success() -> None:
    from sitt_training.matrix import _summary

    row = {"task": "pendulum", "method": "l2t", "seed": 2, "status": "ok",
           "teacher_success": float("nan"), "student_success": float("nan"),
           "teacher_return": -151.25, "student_return": -240.5}
    assert _summary(row) == "pendulum/l2t_s2 T -151.2 S -240.5 (return)"
    row.update(task="tunnel_vision", teacher_success=1.0, student_success=0.875)
    assert _summary(row) == "tunnel_vision/l2t_s2 T 1.00 S 0.88"
    assert _summary({**row, "status": "failed"}) == "tunnel_vision/l2t_s2 FAILED"


def test_task_metrics_get_their_own_table() -> None:
    """The arm's handle visibility (any task's own episode metrics), teacher / student."""
    from sitt_training.matrix import task_table

    def row(method: str, seed: int, visible_t: float, visible_s: float) -> dict:
        summary = {'episodes': 4, 'success': 1.0, 'return': -60.0, 'length': 23.0}
        return {'method': method, 'seed': seed, 'status': 'ok', 'teacher_success': 1.0,
                'student_success': 0.5, 'gap': 0.5, 'env_steps': 100,
                'student_samples': 100, 'teacher_return': -60.0, 'student_return': -70.0,
                'teacher': {**summary, 'handle_visible': visible_t, 'grasped_fraction': 0.0},
                'student': {**summary, 'handle_visible': visible_s, 'grasped_fraction': 0.0}}
    rows = [row('sitt', 0, 0.9, 0.8), row('sitt', 1, 0.8, 0.6), row('bc', 0, 0.6, 0.5),
            {'method': 'bc', 'seed': 1, 'status': 'failed', 'attempts': 2, 'error': 'boom'}]
    table = '\n'.join(task_table(['sitt', 'bc'], [0, 1], rows))
    assert '| method | handle_visible | grasped_fraction |' in table
    assert '| sitt | 0.85 / 0.7 | 0 / 0 |' in table
    assert '| sitt | 1.00 / 0.50 | 1.00 / 0.50 |' in table  # each run, by seed
    assert '| bc | 1.00 / 0.50 | – |' in table  # seed 1 failed
    assert '| bc | 0.6 / 0.5 | 0 / 0 |' in table
    # Tasks without metrics of their own get no second table.
    plain = [{k: v for k, v in r.items() if k not in ('teacher', 'student')} for r in rows]
    assert 'Task metrics' not in '\n'.join(task_table(['sitt', 'bc'], [0, 1], plain))
