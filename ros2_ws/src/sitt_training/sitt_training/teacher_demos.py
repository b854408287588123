"""Starting the teacher from a scripted expert's demonstrations (``train.teacher_demos``).

Some skills are too rare for PPO to find by its own noise: on ``arm_drawer`` with
``success_needs_grasp`` no teacher learned to close its fingers on the handle in 600
iterations (docs/results.md, "A task that needs a grip"), while the task's scripted opener
(``envs/arm_scripted.py``, privileged state and the arm's Jacobian) grips and pulls in
every layout. So a task that has a scripted expert (``env.scripted_expert()``: an object
with ``act()`` and ``reset(env_ids)``) can give the teacher a start before the first
iteration, in ``train.demo_rounds`` rounds of ``train.teacher_demos`` episodes each, in
layouts of their own (``DEMO_SEED`` + the training seed):

- round 1: the expert acts; later rounds: the teacher as fitted so far acts and the
  expert labels the states it reaches (DAgger), since a plain clone drifts off the
  expert's path where a grip needs centimetres; in every round ``train.demo_noise`` adds
  Gaussian noise to the executed action (the label stays the expert's);
- after each round the teacher's actor (E_T and the shared decoder's mean) regresses the
  expert's actions from the teacher's observations (mean squared error), and the critic
  the episodes' discounted returns (PPO's gamma), on everything labelled so far, so the
  first advantages do not start from a random value function.

The shared log-std is left as configured: give PPO a small ``ppo.init_log_std`` and
``ppo.lr`` with this start, or its first updates undo it (docs/results.md). Every method
gets the same start (the expert, its layouts and the regression depend on the task and
the training seed only), so budgets stay equal; the demonstrations' environment steps
count in ``env_steps``. What the pretraining reached (held-out errors, the teacher's
validation success straight after it) is kept as ``demos.json`` in the run directory.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from .envs import make_task
from .seeds import DEMO_SEED

HELD_OUT_EVERY = 10  # every 10th episode is held out, for the held-out errors
BATCH_SIZE = 256
LEARNING_RATE = 1e-3

Step = tuple[np.ndarray, np.ndarray, float]  # teacher observation, expert's action, reward


@dataclass
class Demonstrations:
    """Labelled episodes, step by step (only episodes that ended)."""

    obs: np.ndarray  # (N, teacher_dim) teacher observations
    actions: np.ndarray  # (N, action_dim) the expert's actions, in the action space
    returns: np.ndarray  # (N,) discounted return from each step to the episode's end
    episode: np.ndarray  # (N,) which episode each step belongs to
    successes: np.ndarray  # (episodes,) bool: whether the episode as executed succeeded
    env_steps: int  # every step taken, unfinished episodes' too

    def __add__(self, other: Demonstrations) -> Demonstrations:
        offset = len(self.successes)
        return Demonstrations(
            np.concatenate([self.obs, other.obs]), np.concatenate([self.actions, other.actions]),
            np.concatenate([self.returns, other.returns]),
            np.concatenate([self.episode, other.episode + offset]),
            np.concatenate([self.successes, other.successes]),
            self.env_steps + other.env_steps)


@dataclass
class DemoReport:
    """What the pretraining did: written to the run directory as ``demos.json``."""

    episodes: int  # per round
    rounds: int
    steps: int  # labelled steps, all rounds
    env_steps: int
    noise: float
    success_per_round: list[float]  # of the executed episodes: the expert's, then the teacher's
    epochs: int  # per round
    held_out_action_rmse: list[float]  # after each round, averaged over action dimensions
    held_out_value_r2: list[float]  # after each round, against predicting the mean return
    collect_s: float
    train_s: float
    teacher_success_after: float | None = None  # validation, filled in by the trainer

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def collect_demonstrations(env: Any, expert: Any, episodes: int, gamma: float, noise: float,
                           rng: np.random.Generator,
                           actor: Callable[[np.ndarray], np.ndarray] | None = None,
                           show_progress: bool = True) -> Demonstrations:
    """``episodes`` new episodes of ``env`` labelled by ``expert`` (``act()``, ``reset(ids)``).

    The environments execute the expert's action, or ``actor``'s (teacher observations in,
    actions out) when given, plus Gaussian noise of std ``noise``; the label is always the
    expert's action in the state reached. Noise makes the expert show how to recover from
    the small errors a learner makes (DART, Laskey et al. 2017); an ``actor`` lets it label
    the states the learner itself visits (DAgger, Ross et al. 2011). Starts by resetting
    every environment (a new env's first episodes; otherwise the next ones)."""
    num_envs = env.num_envs
    space = env.single_action_space
    obs, _ = env.reset()
    expert.reset()
    running: list[list[Step]] = [[] for _ in range(num_envs)]
    finished: list[tuple[list[Step], bool]] = []
    env_steps = 0
    label = "expert demonstrations" if actor is None else "teacher, labelled by the expert"
    with tqdm(total=episodes, desc=label, unit="ep", disable=not show_progress,
              mininterval=2.0) as bar:
        while len(finished) < episodes:
            teacher_obs = obs["teacher"].copy()
            labels = np.asarray(expert.act(), dtype=space.dtype)
            executed = labels if actor is None else np.asarray(actor(teacher_obs))
            if noise:
                executed = executed + noise * rng.standard_normal(executed.shape)
            executed = np.clip(executed, space.low, space.high).astype(space.dtype)
            obs, reward, terminated, truncated, infos = env.step(executed)
            env_steps += num_envs
            for i in range(num_envs):
                running[i].append((teacher_obs[i], labels[i], float(reward[i])))
            ended = np.flatnonzero(terminated | truncated)
            for i in ended:
                if len(finished) < episodes:
                    finished.append((running[i], bool(infos["episode"]["success"][i])))
                    bar.update(1)
                running[i] = []
            if ended.size:
                expert.reset(ended)
    return _stack(finished, gamma, env_steps)


def _stack(finished: list[tuple[list[Step], bool]], gamma: float, env_steps: int
           ) -> Demonstrations:
    obs, actions, returns, episode = [], [], [], []
    for k, (steps, _) in enumerate(finished):
        rewards = np.array([r for _, _, r in steps])
        to_go = np.zeros(len(steps))
        total = 0.0
        for t in range(len(steps) - 1, -1, -1):  # a time limit's unknown rest counts as 0
            total = rewards[t] + gamma * total
            to_go[t] = total
        obs += [o for o, _, _ in steps]
        actions += [a for _, a, _ in steps]
        returns.append(to_go)
        episode.append(np.full(len(steps), k))
    return Demonstrations(
        obs=np.stack(obs).astype(np.float32), actions=np.stack(actions).astype(np.float32),
        returns=np.concatenate(returns).astype(np.float32), episode=np.concatenate(episode),
        successes=np.array([ok for _, ok in finished]), env_steps=env_steps)


def pretrain_teacher(policy: Any, demos: Demonstrations, epochs: int,
                     generator: torch.Generator, show_progress: bool = True
                     ) -> tuple[float, float]:
    """Fit the teacher's actor mean to the expert's actions and the critic to the returns
    (module docstring) for ``epochs`` passes over the episodes not held out; returns the
    held-out action RMSE and value R^2 at the end."""
    if policy.decoder.spec.discrete:
        raise ValueError("train.teacher_demos: only continuous actions are supported")
    is_test = torch.from_numpy(demos.episode % HELD_OUT_EVERY == HELD_OUT_EVERY - 1)
    train_rows, test_rows = torch.nonzero(~is_test).squeeze(1), torch.nonzero(is_test).squeeze(1)
    if len(test_rows) == 0:
        raise ValueError(f"train.teacher_demos: use at least {HELD_OUT_EVERY} episodes (every "
                         f"{HELD_OUT_EVERY}th is held out to measure the fit)")
    x, a, g = (torch.from_numpy(demos.obs), torch.from_numpy(demos.actions),
               torch.from_numpy(demos.returns))
    actor = [*policy.teacher_encoder.parameters(), *policy.decoder.body.parameters(),
             policy.decoder.linear.weight, policy.decoder.linear.bias]
    critic = [*policy.critic.parameters()]
    optimizer = torch.optim.Adam([*actor, *critic], lr=LEARNING_RATE)
    batches = max(1, len(train_rows) // BATCH_SIZE)
    with tqdm(total=epochs * batches, desc="teacher from demonstrations", unit="batch",
              disable=not show_progress, mininterval=2.0) as bar:
        for _ in range(epochs):
            shuffled = train_rows[torch.randperm(len(train_rows), generator=generator)]
            for rows in shuffled.split(BATCH_SIZE)[:batches]:
                action_loss = ((policy.teacher_out(x[rows]) - a[rows]) ** 2).mean()
                value_loss = ((policy.value(x[rows]) - g[rows]) ** 2).mean()
                optimizer.zero_grad(set_to_none=True)
                (action_loss + value_loss).backward()  # disjoint parameters: two fits
                optimizer.step()
                bar.update()
    for p in [*actor, *critic]:
        p.grad = None
    with torch.no_grad():
        rmse = ((policy.teacher_out(x[test_rows]) - a[test_rows]) ** 2).mean().sqrt().item()
        baseline = ((g[test_rows] - g[train_rows].mean()) ** 2).mean().item()
        error = ((policy.value(x[test_rows]) - g[test_rows]) ** 2).mean().item()
    return rmse, 1.0 - error / max(baseline, 1e-12)


def teacher_from_demonstrations(policy: Any, task: str, task_kwargs: dict[str, Any],
                                num_envs: int, seed: int, episodes: int, epochs: int,
                                gamma: float, noise: float = 0.0, rounds: int = 1,
                                show_progress: bool = True) -> DemoReport:
    """``rounds`` rounds of ``episodes`` episodes each, in ``num_envs`` environments of
    ``task`` laid out from ``DEMO_SEED + seed`` (no camera images rendered): the expert's
    own in the first, the teacher's as fitted so far in the others (DAgger), each labelled
    by the expert; after each round the teacher is fitted to everything labelled so far."""
    env = make_task(task, num_envs, DEMO_SEED + seed, **task_kwargs)
    collect_s = train_s = 0.0
    try:
        make_expert = getattr(env, "scripted_expert", None)
        if make_expert is None:
            raise ValueError(f"train.teacher_demos: task {task!r} has no scripted expert "
                             "(its environment lacks scripted_expert())")
        expert = make_expert()
        env.set_student_mask(np.zeros(num_envs, dtype=bool))
        rng = np.random.default_rng([DEMO_SEED, seed])
        generator = torch.Generator().manual_seed(seed)

        def teacher(obs: np.ndarray) -> np.ndarray:
            with torch.no_grad():
                out = policy.teacher_out(torch.from_numpy(obs))
                return policy.decoder.deterministic(out).numpy()

        demos: Demonstrations | None = None
        success, rmse, r2 = [], [], []
        for k in range(rounds):
            start = time.perf_counter()
            new = collect_demonstrations(env, expert, episodes, gamma, noise, rng,
                                         None if k == 0 else teacher, show_progress)
            collected = time.perf_counter()
            policy.update_normalizers(torch.from_numpy(new.obs))
            demos = new if demos is None else demos + new
            round_rmse, round_r2 = pretrain_teacher(policy, demos, epochs, generator,
                                                    show_progress)
            collect_s += collected - start
            train_s += time.perf_counter() - collected
            success.append(float(new.successes.mean()))
            rmse.append(round_rmse)
            r2.append(round_r2)
    finally:
        env.close()
    assert demos is not None
    return DemoReport(episodes=episodes, rounds=rounds, steps=len(demos.obs),
                      env_steps=demos.env_steps, noise=noise, success_per_round=success,
                      epochs=epochs, held_out_action_rmse=rmse, held_out_value_r2=r2,
                      collect_s=collect_s, train_s=train_s)
