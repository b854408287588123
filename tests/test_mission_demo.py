"""The shipped quadrotor student (models/quadrotor_sitt, written by bench/ship_model.py)
and the mission demo (bench/mission_demo.py, the first half of ``make demo``).
``Makefile``'s demo recipe is checked with the README in test_packaging.py."""

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from sitt_policy_node.contract import load_policy
from sitt_training.cli import load_run
from sitt_training.envs import make_task
from sitt_training.export import export_student

REPO = Path(__file__).resolve().parents[1]
MODEL_DIR = REPO / 'models' / 'quadrotor_sitt'
sys.path.insert(0, str(REPO / 'bench'))

from ship_model import MAX_BYTES, ship  # noqa: E402


def test_shipped_model_is_small_tracked_and_documented():
    provenance = json.loads((MODEL_DIR / 'provenance.json').read_text())
    files = sorted(p.name for p in MODEL_DIR.iterdir())
    assert files == sorted(['PROVENANCE.md', 'config.yaml', 'provenance.json',
                            provenance['checkpoint']])
    checkpoint = MODEL_DIR / provenance['checkpoint']
    assert sum(p.stat().st_size for p in MODEL_DIR.iterdir()) < MAX_BYTES
    assert hashlib.sha256(checkpoint.read_bytes()).hexdigest() == \
        provenance['checkpoint_sha256']
    assert provenance['checkpoint'] == f"model_{provenance['iteration']}.pt"
    assert (provenance['task'], provenance['method']) == ('quadrotor', 'sitt')
    for key in ('source_run', 'env_steps', 'git_commit_shipped', 'reproduce'):
        assert provenance[key], key
    assert 'bench/ship_model.py' in provenance['reproduce']
    assert provenance['reproduce'] in (MODEL_DIR / 'PROVENANCE.md').read_text()
    ignored = subprocess.run(['git', '-C', str(REPO), 'check-ignore',
                              *map(str, MODEL_DIR.iterdir())],
                             capture_output=True, text=True, check=False)
    assert ignored.returncode == 1, f'git-ignored: {ignored.stdout}{ignored.stderr}'
    state = torch.load(checkpoint, weights_only=False)
    assert 'optimizers' not in state and 'env' not in state  # evaluation only


def test_shipped_model_loads_and_exports(tmp_path):
    cfg, policy, meta = load_run(MODEL_DIR)
    provenance = json.loads((MODEL_DIR / 'provenance.json').read_text())
    assert cfg.task.name == 'quadrotor' and cfg.method.name == 'sitt'
    assert (meta['iteration'], meta['env_steps']) == (provenance['iteration'],
                                                      provenance['env_steps'])
    env = make_task(cfg.task.name, 1, 0, **cfg.task.kwargs)
    model = export_student(policy, env, tmp_path, {'test': 'shipped'})
    env.close()
    contract, _ = load_policy(model)
    assert contract['task'] == 'quadrotor'


def test_ship_model_round_trip(tmp_path):
    """Shipping the shipped directory again gives the same networks and a loadable run."""
    out = tmp_path / 'shipped'
    provenance = ship(MODEL_DIR, out)
    assert provenance['iteration'] == load_run(MODEL_DIR)[2]['iteration']
    _, policy, _ = load_run(out)
    _, original, _ = load_run(MODEL_DIR)
    for (name, a), (_, b) in zip(policy.state_dict().items(),
                                 original.state_dict().items(), strict=True):
        assert torch.equal(a, b), name
    assert json.loads((out / 'provenance.json').read_text())['reproduce'].endswith(
        f'--out {out}')
    with pytest.raises(ValueError, match='must differ'):
        ship(out, out)


def test_ship_model_takes_the_validation_best_networks(tmp_path):
    """``--checkpoint best`` ships best_model.pt under the model_<iter>.pt name load_run
    finds, and records where it came from."""
    run = tmp_path / 'run'
    run.mkdir()
    (run / 'config.yaml').write_text((MODEL_DIR / 'config.yaml').read_text())
    state = torch.load(next(MODEL_DIR.glob('model_*.pt')), weights_only=False)
    torch.save(dict(state, iteration=7), run / 'best_model.pt')
    torch.save(dict(state, iteration=9), run / 'model_9.pt')  # newer, not the one shipped
    out = tmp_path / 'shipped'
    provenance = ship(run, out, 'best', trained_commit='HEAD')
    assert (provenance['source_checkpoint'], provenance['checkpoint']) == \
        ('best_model.pt', 'model_7.pt')
    assert sorted(p.name for p in out.glob('*.pt')) == ['model_7.pt']
    assert load_run(out)[2]['iteration'] == 7
    assert '--checkpoint best' in provenance['reproduce']
    assert len(provenance['git_commit_trained']) == 40


def test_mission_demo_end_to_end(tmp_path, ros_env):
    """One short episode through every stage: export, in process, HIL over DDS with a bag,
    offline replay of the bag."""
    out = tmp_path / 'demo'
    proc = subprocess.run(
        [sys.executable, str(REPO / 'bench' / 'mission_demo.py'), '--episodes', '1',
         '--episode-steps', '40', '--out', str(out), '--timeout', '120'],
        env=ros_env, capture_output=True, text=True, timeout=180, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    summary = json.loads((out / 'summary.json').read_text())
    assert summary['episodes'] == 1 and summary['hil_steps'] == 40
    assert summary['same_outcome'] == 1 and summary['same_length'] == 1
    assert summary['inproc_success'] == summary['hil_success']
    assert summary['replay_frames_compared'] == summary['replay_frames'] == 40
    assert summary['replay_max_action_error'] <= 1e-5
    assert set(summary['stage_s']) == {'export', 'in process', 'HIL', 'replay'}
    assert (out / 'bag' / 'metadata.yaml').is_file()
    assert 'student success in process' in proc.stdout
    for stage in ('[1/4] export', '[2/4] in process', '[3/4] HIL', '[4/4] replay'):
        assert stage in proc.stdout, stage
