"""Starting the teacher from the scripted expert (``train.teacher_demos``): labels, returns,
the fit, the trainer's bookkeeping and the config's errors. Real pybullet arms, a few small
batches."""

import json

import numpy as np
import pytest
import torch

from sitt_training.config import ConfigError, load_config, preset_path
from sitt_training.envs import make_task
from sitt_training.envs.arm_scripted import ScriptedDrawerOpener
from sitt_training.seeds import DEMO_SEED
from sitt_training.teacher_demos import collect_demonstrations
from sitt_training.trainer import DEMOS_RECORD, Trainer

GAMMA = 0.99


def arm_with_expert(num_envs, **kwargs):
    env = make_task('arm_drawer', num_envs, DEMO_SEED, track_visibility=False, **kwargs)
    env.set_student_mask(np.zeros(num_envs, dtype=bool))
    return env, env.scripted_expert()  # collect_demonstrations resets the env


def expert_demos(num_envs, episodes, noise=0.0, rng_seed=0, **kwargs):
    """``episodes`` labelled episodes of the expert in ``num_envs`` fresh arms (closed after)."""
    env, expert = arm_with_expert(num_envs, **kwargs)
    try:
        return collect_demonstrations(env, expert, episodes, GAMMA, noise,
                                      np.random.default_rng(rng_seed), show_progress=False), env
    finally:
        env.close()


def test_expert_episodes_are_labelled_and_discounted():
    demos, env = expert_demos(4, 4)
    assert demos.successes.tolist() == [True] * 4  # the scripted opener opens every drawer
    assert demos.env_steps % 4 == 0 and demos.env_steps >= len(demos.obs)
    assert demos.obs.shape == (len(demos.actions), env.single_observation_space['teacher'].shape[0])
    assert np.abs(demos.actions).max() <= 1.0
    lengths = np.bincount(demos.episode)
    assert len(lengths) == 4 and np.all((50 < lengths) & (lengths < 150))


def test_returns_are_the_discounted_rewards_of_the_episode():
    """One arm, one episode, replayed step by step in a second arm: G_t - gamma G_t+1 gives
    back each step's reward, and G after the last step is 0."""
    demos, env = expert_demos(1, 1)
    replay, replay_expert = arm_with_expert(1)
    rewards = []
    try:
        replay.reset()
        replay_expert.reset()
        for label in demos.actions:
            action = replay_expert.act()
            assert np.allclose(action, label, atol=1e-6)  # the same expert in the same state
            _, reward, terminated, truncated, _ = replay.step(action.astype(np.float32))
            rewards.append(float(reward[0]))
        assert terminated[0] or truncated[0]
    finally:
        replay.close()
    g = demos.returns.astype(np.float64)
    assert np.allclose(g - GAMMA * np.append(g[1:], 0.0), rewards, atol=2e-3)


def test_the_experts_action_is_a_function_of_the_state():
    """The demonstrations' expert reads its phase from the state: a fresh one, dropped into
    the middle of an episode, acts exactly as the one that played it so far. The default
    opener remembers its phase and does not (it would start by approaching again)."""
    env, expert = arm_with_expert(4, success_needs_grasp=True)
    try:
        env.reset()
        expert.reset()
        for _ in range(75):  # into the closing and pulling phases
            env.step(expert.act().astype(np.float32))
        assert set(expert.phase.tolist()) & {2, 3}
        assert np.array_equal(env.scripted_expert().act(), expert.act())
        assert not np.array_equal(ScriptedDrawerOpener(env).act(), expert.act())
    finally:
        env.close()


@pytest.mark.parametrize('noise, least', [(0.0, 1.0), (0.1, 0.9)])
def test_the_expert_grips_and_opens_despite_noise(noise, least):
    """With ``success_needs_grasp``, executed actions plus noise (the demonstrations' DART
    noise), the expert still grips and opens nearly every drawer: it recovers from slips."""
    demos, _ = expert_demos(8, 8, noise, rng_seed=3, success_needs_grasp=True)
    assert demos.successes.mean() >= least


def test_an_actor_executes_and_the_expert_labels():
    """An actor that never moves: the drawer stays shut, yet every label is the expert's
    (it keeps asking to approach the handle)."""
    env, expert = arm_with_expert(2)
    still = np.zeros(env.single_action_space.shape, dtype=np.float32)
    still[7] = 1.0  # fingers open
    try:
        demos = collect_demonstrations(env, expert, 2, GAMMA, 0.0, np.random.default_rng(0),
                                       actor=lambda obs: np.tile(still, (len(obs), 1)),
                                       show_progress=False)
    finally:
        env.close()
    assert demos.successes.tolist() == [False, False]
    assert len(demos.obs) == 2 * env.episode_steps  # both ran to the time limit
    moves = np.abs(demos.actions[:, :7]).max(axis=1)
    assert (moves > 0.05).mean() > 0.9  # the expert asks to move at almost every step
    first = demos.obs[demos.episode == 0]
    assert np.allclose(first[0], first[-1], atol=0.02)  # while the arm stays where it is


def tiny_arm_config(**changes):
    sets = {'task.num_envs': 8, 'task.student_envs': 2, 'train.teacher_demos': 20,
            'train.demo_epochs': 25, 'train.eval_episodes': 4, 'train.iterations': 1,
            'train.torch_threads': 1, **changes}
    return load_config(preset_path('arm_drawer', 'bc'), [f'{k}={v}' for k, v in sets.items()])


def test_teacher_fitted_to_the_expert_acts_like_it(tmp_path):
    cfg = tiny_arm_config()
    trainer = Trainer(cfg, tmp_path, show_progress=False)
    env, expert = arm_with_expert(4)
    env.reset(seed=DEMO_SEED + 777)  # other layouts than the demonstrations'
    try:
        probe = collect_demonstrations(env, expert, 4, GAMMA, 0.0, np.random.default_rng(1),
                                       show_progress=False)
    finally:
        env.close()

    def action_rmse():
        with torch.no_grad():
            out = trainer.policy.teacher_out(torch.from_numpy(probe.obs))
        return float(np.sqrt(((out.numpy() - probe.actions) ** 2).mean()))

    before = action_rmse()
    trainer.start_teacher_from_demos()
    report = json.loads((tmp_path / DEMOS_RECORD).read_text())
    assert report['episodes'] == 20 and report['rounds'] == 1
    assert report['success_per_round'] == [1.0]
    assert trainer.env_steps == report['env_steps'] >= report['steps']  # counted in the budget
    assert report['held_out_value_r2'][-1] > 0.5
    assert report['teacher_success_after'] is not None
    after = action_rmse()
    assert after < 0.5 * before, (before, after)  # on layouts it never saw


def test_demo_rounds_let_the_teacher_act(tmp_path):
    cfg = tiny_arm_config(**{'train.teacher_demos': 10, 'train.demo_rounds': 2,
                             'train.demo_epochs': 5, 'train.eval_every': 0})
    from sitt_training.teacher_demos import teacher_from_demonstrations

    trainer = Trainer(cfg, tmp_path, show_progress=False)
    report = teacher_from_demonstrations(trainer.policy, 'arm_drawer', {'track_visibility': False},
                                         4, 0, 10, 5, GAMMA, rounds=2, show_progress=False)
    assert report.rounds == 2 and len(report.success_per_round) == 2
    assert report.success_per_round[0] == 1.0  # the expert's round
    assert report.steps > 10 * 50  # both rounds labelled
    assert len(report.held_out_action_rmse) == 2


@pytest.mark.parametrize('change, message', [
    ({'train.teacher_demos': -1}, 'train.teacher_demos: must be >= 0'),
    ({'train.demo_rounds': 0}, 'train.demo_rounds: must be > 0'),
    ({'train.demo_noise': -0.1}, 'train.demo_noise: must be >= 0'),
])
def test_bad_demo_settings_name_the_key(change, message):
    with pytest.raises(ConfigError, match=message):
        tiny_arm_config(**change)


def test_off_policy_methods_and_tasks_without_an_expert_refuse_demos(tmp_path):
    with pytest.raises(ConfigError, match='train.teacher_demos: starts a PPO teacher'):
        load_config(preset_path('pendulum', 'l2t'), ['train.teacher_demos=4'])
    cfg = load_config(preset_path('tunnel_vision', 'bc'),
                      ['train.teacher_demos=10', 'task.num_envs=4', 'task.student_envs=1'])
    with pytest.raises(ValueError, match="task 'tunnel_vision' has no scripted expert"):
        Trainer(cfg, tmp_path, show_progress=False).start_teacher_from_demos()
