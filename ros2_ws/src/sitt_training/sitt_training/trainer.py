"""The training loops: ``TrainerBase`` (what every method's loop shares: seeding, the run
directory, checkpoints, resume, validation and model selection, signals) and ``Trainer``,
the PPO methods' loop: roll-out -> PPO update -> student update. The off-policy methods'
loops (L2T, COSIL) are in ``offpolicy_trainer.py``.

A run directory holds ``config.yaml`` (resolved), ``metrics.jsonl`` (one line per
iteration), TensorBoard scalars in ``tb/``, and ``model_<iter>.pt`` checkpoints written
atomically. A checkpoint holds everything needed to continue exactly: networks, optimisers,
the environments' state, the paired buffer and the random streams.
"""

from __future__ import annotations

import json
import math
import os
import signal
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from .buffers import PairedBuffer
from .config import Config, save_config
from .envs import make_task
from .evaluation import MAX_TRAIN_SEED, VALIDATION_SEED, evaluate
from .exploration import CountBonus
from .image_pretrain import pretrain_student_images
from .methods import METHOD_CLASSES, make_method
from .metrics_log import METRICS, trim_metrics
from .networks import ActionSpec, ImageStateEncoder, TeacherStudentPolicy, student_encoder_for
from .obs import take, to_torch
from .ppo import PPO, RolloutStorage
from .schedules import SuccessRamp
from .teacher_demos import teacher_from_demonstrations

CHECKPOINT_GLOB = "model_*.pt"
# The validation-best networks (``keep_best``): not matched by CHECKPOINT_GLOB, so resuming
# always continues from the newest full checkpoint.
BEST_MODEL = "best_model.pt"
BEST_RECORD = "best.json"
PRETRAIN_RECORD = "pretrain.json"  # network.pretrain_views: what the pretraining reached
DEMOS_RECORD = "demos.json"  # train.teacher_demos: what the teacher's start reached
# What evaluation and export need from a checkpoint: networks, counters and config.
EVAL_STATE_KEYS = ("policy", "iteration", "env_steps", "student_samples", "wall_time",
                   "last_teacher_success", "config")


def build_policy(cfg: Config, env: Any) -> TeacherStudentPolicy:
    """The networks for a task, from the config (also used by evaluation and export)."""
    spaces = env.single_observation_space
    net = cfg.network
    policy = TeacherStudentPolicy(
        teacher_dim=int(np.prod(spaces["teacher"].shape)),
        student=lambda: student_encoder_for(spaces["student"], net.feature_dim, net.hidden,
                                            net.cnn_channels, net.normalize_obs),
        action_spec=ActionSpec.from_space(env.single_action_space),
        feature_dim=cfg.network.feature_dim,
        hidden=cfg.network.hidden,
        critic_hidden=cfg.network.critic_hidden,
        init_log_std=cfg.ppo.init_log_std,
        min_log_std=cfg.ppo.min_log_std,
        normalize_obs=net.normalize_obs,
        decoder_hidden=net.decoder_hidden,
        **METHOD_CLASSES[cfg.method.name].network_options,
    )
    if net.freeze_trunk:  # pretrained before training (image_pretrain), fixed from then on
        if not isinstance(policy.student_encoder, ImageStateEncoder):
            raise ValueError("network.freeze_trunk: the task's student has no camera image")
        for parameter in policy.student_encoder.trunk_parameters():
            parameter.requires_grad_(False)
    return policy


def checkpoints(run_dir: Path) -> list[Path]:
    """Checkpoints of a run, oldest first."""
    return sorted(run_dir.glob(CHECKPOINT_GLOB), key=lambda p: int(p.stem.split("_")[1]))


def atomic_save(obj: Any, path: Path) -> None:
    """Write to a temporary file and rename: a crash never leaves a half-written file."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


class TrainerBase:
    """What every training loop shares: seeding, the run directory's files (module
    docstring), exact resume, model selection on the validation seeds and signal handling.

    Subclasses build the task and networks in ``__init__`` and implement ``iterate`` (one
    iteration, returning its stats) and ``state_dict(with_buffer)`` / ``load_state_dict``;
    ``self.policy`` must evaluate with ``evaluation.evaluate``."""

    def __init__(self, cfg: Config, run_dir: Path, show_progress: bool = True) -> None:
        if cfg.train.seed >= MAX_TRAIN_SEED:
            raise ValueError(f"train.seed must be < {MAX_TRAIN_SEED} (higher seeds are "
                             f"reserved for evaluation), got {cfg.train.seed}")
        self.cfg = cfg
        self.run_dir = Path(run_dir)
        self.show_progress = show_progress
        torch.set_num_threads(cfg.train.torch_threads)
        torch.manual_seed(cfg.train.seed)
        self.generator = torch.Generator().manual_seed(cfg.train.seed)
        self.policy: Any = None
        self.iteration = 0
        self.env_steps = 0
        self.student_samples = 0  # student observations used for training
        self.wall_time = 0.0
        self.last_teacher_success: float | None = None  # of the previous iteration
        self.last_teacher_episodes = 0  # the episodes that rate is over
        self.best_score: list[float] | None = None  # keep_best: [student, teacher] score
        # Task options that ramp in (cfg.task.ramp_options): 0 until the teacher succeeds.
        self.task_ramp = SuccessRamp(cfg.task.ramp_after_success, cfg.task.ramp_iterations)
        self._stop_signal: int | None = None

    def make_env(self) -> Any:
        """The training environments of the config's task, seeded with ``train.seed``."""
        cfg = self.cfg
        return make_task(cfg.task.name, cfg.task.num_envs, cfg.train.seed, **cfg.task.kwargs)

    def iterate(self) -> dict[str, float]:
        raise NotImplementedError

    def state_dict(self, with_buffer: bool = True) -> dict[str, Any]:
        raise NotImplementedError

    def load_state_dict(self, state: dict[str, Any]) -> None:
        raise NotImplementedError

    def base_state(self) -> dict[str, Any]:
        """What every trainer's checkpoint holds; subclasses add optimisers and buffers."""
        return {
            "iteration": self.iteration,
            "env_steps": self.env_steps,
            "student_samples": self.student_samples,
            "wall_time": self.wall_time,
            "last_teacher_success": self.last_teacher_success,
            "last_teacher_episodes": self.last_teacher_episodes,
            "config": self.cfg.to_dict(),
            "policy": self.policy.state_dict(),
            "env": self.env.state_dict(),
            "rng": {"torch": torch.get_rng_state(), "generator": self.generator.get_state()},
            "best_score": self.best_score,
            "task_ramp_start": self.task_ramp.start,
        }

    def load_base_state(self, state: dict[str, Any]) -> None:
        self.iteration = state["iteration"]
        self.env_steps = state["env_steps"]
        self.student_samples = state["student_samples"]
        self.wall_time = state["wall_time"]
        self.last_teacher_success = state["last_teacher_success"]
        self.last_teacher_episodes = state.get("last_teacher_episodes", 0)  # newer key
        self.policy.load_state_dict(state["policy"])
        self.env.load_state_dict(state["env"])
        torch.set_rng_state(state["rng"]["torch"])
        self.generator.set_state(state["rng"]["generator"])
        self.best_score = state.get("best_score")  # absent in checkpoints before keep_best
        self.task_ramp.start = state.get("task_ramp_start", self.task_ramp.start)

    def ramp_task_options(self) -> dict[str, float]:
        """Set the ramped task options for the coming iteration (from the previous roll-out's
        teacher success); their factor for the metrics, or nothing without any."""
        options = self.cfg.task.ramp_options
        if not options:
            return {}
        self.task_ramp.observe(self.iteration, self.last_teacher_success,
                               self.last_teacher_episodes)
        factor = self.task_ramp.factor(self.iteration)
        for name in options:
            self.env.set_task_option(name, factor * float(self.cfg.task.kwargs[name]))
        return {"task/ramp_factor": factor}

    def finish_iteration(self, stats: dict[str, float], start: float, steps: int,
                         sim_time: float) -> dict[str, float]:
        """Close an iteration that began at ``start`` (``perf_counter``) and stepped
        ``steps`` transitions in ``sim_time`` s: counters, speed, and every
        ``train.eval_every`` iterations validation with model selection."""
        elapsed = time.perf_counter() - start
        self.wall_time += elapsed
        self.iteration += 1
        stats.update({"perf/env_steps_per_s": steps / elapsed,
                      "perf/rollout_steps_per_s": steps / max(sim_time, 1e-9),
                      "perf/iteration_s": elapsed})
        if self.cfg.train.eval_every and self.iteration % self.cfg.train.eval_every == 0:
            stats.update(self.validate())
            self.keep_best(stats)
        return stats

    # -------------------------------------------------------------- validation
    def validate(self, episodes: int | None = None) -> dict[str, float]:
        """Deterministic teacher and student on validation seeds (never trained on).
        Tasks without success report NaN success."""
        n = episodes or self.cfg.train.eval_episodes
        out = {}
        for role in ("teacher", "student"):
            result = evaluate(self.policy, self.cfg.task.name, self.cfg.task.kwargs, role, n,
                              seed=VALIDATION_SEED)
            out[f"eval/{role}_success"] = result.success
            out[f"eval/{role}_return"] = result.mean_return
        return out

    def keep_best(self, stats: dict[str, float]) -> None:
        """Model selection on the validation seeds: when the student's validation success
        (then the teacher's) is at least the best so far, write ``best_model.pt`` (the
        networks only) and ``best.json``. Later iterations win ties. Tasks that define no
        success are ranked by return instead."""
        if not self.cfg.train.keep_best:
            return
        measure = "success"
        if math.isnan(stats["eval/student_success"]) or math.isnan(stats["eval/teacher_success"]):
            measure = "return"
        score = [stats[f"eval/student_{measure}"], stats[f"eval/teacher_{measure}"]]
        if self.best_score is not None and score < self.best_score:
            return
        self.best_score = score
        self.run_dir.mkdir(parents=True, exist_ok=True)
        state = self.state_dict(with_buffer=False)
        atomic_save({k: state[k] for k in EVAL_STATE_KEYS}, self.run_dir / BEST_MODEL)
        record = {"iteration": self.iteration, "env_steps": self.env_steps,
                  **{k: v for k, v in stats.items() if k.startswith("eval/")}}
        tmp = self.run_dir / (BEST_RECORD + ".tmp")
        tmp.write_text(json.dumps(record, indent=2) + "\n")
        tmp.replace(self.run_dir / BEST_RECORD)

    # ------------------------------------------------------------- checkpoints
    def save_checkpoint(self) -> Path:
        path = self.run_dir / f"model_{self.iteration}.pt"
        atomic_save(self.state_dict(), path)
        return path

    def resume(self) -> Path | None:
        """Load the newest checkpoint of the run directory, if any."""
        found = checkpoints(self.run_dir)
        if not found:
            return None
        self.load_state_dict(torch.load(found[-1], weights_only=False))
        # Iterations logged after this checkpoint are trained again: log them once.
        trim_metrics(self.run_dir, self.iteration)
        return found[-1]

    def pretrain_student_images(self) -> None:
        """``network.pretrain_views``: pretrain the student's image trunk (image_pretrain)
        and keep the report as ``pretrain.json``."""
        net = self.cfg.network
        report = pretrain_student_images(self.policy, self.env, net.pretrain_views,
                                         net.pretrain_epochs, self.cfg.train.seed,
                                         self.show_progress)
        (self.run_dir / PRETRAIN_RECORD).write_text(json.dumps(report.to_dict(), indent=2))
        tqdm.write(f"image trunk pretrained on {report.views} views: held-out R^2 "
                   f"{report.held_out_r2[-1]:.3f} (render {report.render_s:.0f} s, "
                   f"train {report.train_s:.0f} s)")

    def start_teacher_from_demos(self) -> None:
        """``train.teacher_demos``: fit the teacher to the task's scripted expert
        (teacher_demos), count the expert's steps, and keep the report as ``demos.json``
        with the teacher's validation success straight after it."""
        cfg = self.cfg
        report = teacher_from_demonstrations(
            self.policy, cfg.task.name, cfg.task.kwargs, cfg.task.num_envs, cfg.train.seed,
            cfg.train.teacher_demos, cfg.train.demo_epochs, cfg.ppo.gamma, cfg.train.demo_noise,
            cfg.train.demo_rounds, self.show_progress)
        self.env_steps += report.env_steps
        if cfg.train.eval_every:
            report.teacher_success_after = evaluate(
                self.policy, cfg.task.name, cfg.task.kwargs, "teacher", cfg.train.eval_episodes,
                seed=VALIDATION_SEED).success
        (self.run_dir / DEMOS_RECORD).write_text(json.dumps(report.to_dict(), indent=2))
        after = ("" if report.teacher_success_after is None
                 else f", teacher validation success {report.teacher_success_after:.3f}")
        rounds = ", ".join(f"{x:.2f}" for x in report.success_per_round)
        tqdm.write(f"teacher started from {report.rounds} x {report.episodes} episodes "
                   f"labelled by the expert (success as executed, per round: {rounds}): "
                   f"held-out action RMSE {report.held_out_action_rmse[-1]:.3f}, value R^2 "
                   f"{report.held_out_value_r2[-1]:.3f}{after}")

    # ---------------------------------------------------------------- main loop
    def _request_stop(self, signum: int, _frame: Any) -> None:
        if self._stop_signal is not None:  # second signal: stop now
            raise KeyboardInterrupt
        self._stop_signal = signum
        tqdm.write(f"signal {signal.Signals(signum).name}: finishing this iteration, "
                   "saving a checkpoint, then stopping (send again to stop at once)")

    def train(self) -> dict[str, Any]:
        """Run to ``train.iterations``; returns the last iteration's stats and status."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        save_config(self.cfg, self.run_dir / "config.yaml")
        from torch.utils.tensorboard import SummaryWriter

        writer = SummaryWriter(str(self.run_dir / "tb"))
        old_handlers = {s: signal.signal(s, self._request_stop)
                        for s in (signal.SIGINT, signal.SIGTERM)}
        total = self.cfg.train.iterations
        bar = tqdm(total=total, initial=self.iteration, disable=not self.show_progress,
                   desc=f"{self.cfg.task.name}/{self.cfg.method.name} s{self.cfg.train.seed}",
                   unit="it", dynamic_ncols=True)
        stats: dict[str, float] = {}
        status = "finished"
        if self.iteration == 0 and self.cfg.network.pretrain_views:
            self.pretrain_student_images()
        if self.iteration == 0 and self.cfg.train.teacher_demos:
            self.start_teacher_from_demos()
        try:
            with open(self.run_dir / METRICS, "a") as log:
                while self.iteration < total:
                    ramp = self.ramp_task_options()
                    stats = {**self.iterate(), **ramp}
                    record = {"iteration": self.iteration, "env_steps": self.env_steps,
                              "student_samples": self.student_samples,
                              "wall_time": self.wall_time, **stats}
                    log.write(json.dumps(record) + "\n")
                    log.flush()
                    for key, value in stats.items():
                        writer.add_scalar(key, value, self.env_steps)
                    bar.update(1)
                    bar.set_postfix(_postfix(stats), refresh=False)
                    if self.iteration % self.cfg.train.checkpoint_every == 0:
                        self.save_checkpoint()
                    if self._stop_signal is not None:
                        status = "interrupted"
                        break
            if self.iteration % self.cfg.train.checkpoint_every != 0 or status != "finished":
                self.save_checkpoint()
        finally:
            bar.close()
            writer.close()
            for sig, handler in old_handlers.items():
                signal.signal(sig, handler)
        return {"status": status, "iteration": self.iteration, "env_steps": self.env_steps,
                "wall_time": self.wall_time, **stats}



class Trainer(TrainerBase):
    """The PPO methods' loop: roll-out -> PPO update (with the method's hooks) -> student
    update."""

    def __init__(self, cfg: Config, run_dir: Path, show_progress: bool = True) -> None:
        super().__init__(cfg, run_dir, show_progress)
        self.env = self.make_env()
        self.env.set_student_mask(self.student_block(0))
        self.obs, _ = self.env.reset(seed=cfg.train.seed)

        self.policy = build_policy(cfg, self.env)
        self.ppo = PPO(self.policy, cfg.ppo)
        self.method = make_method(self.policy, cfg.method, cfg.ppo)
        spaces = self.env.single_observation_space
        self.buffer = PairedBuffer(cfg.method.buffer_size)
        teacher_dim = int(np.prod(spaces["teacher"].shape))
        self.count_bonus = (CountBonus(teacher_dim, cfg.ppo.count_bonus, cfg.ppo.count_bonus_bits,
                                       seed=cfg.train.seed) if cfg.ppo.count_bonus > 0 else None)
        spec = self.policy.decoder.spec
        self.storage = RolloutStorage(cfg.ppo.rollout_steps, cfg.task.num_envs,
                                      teacher_dim,
                                      () if spec.discrete else (spec.n,), spec.discrete)
        self._student_states: list[torch.Tensor] = []  # this roll-out's, for the normalisers

    def student_block(self, iteration: int) -> np.ndarray:
        """The environments that render in the roll-out of ``iteration``: the first
        ``task.student_envs``, or with ``task.rotate_student_envs`` the iteration's block."""
        task = self.cfg.task
        first = iteration * task.student_envs if task.rotate_student_envs else 0
        mask = np.zeros(task.num_envs, dtype=bool)
        mask[(first + np.arange(task.student_envs)) % task.num_envs] = True
        return mask

    def rotate_student_block(self) -> None:
        """Move rendering to this iteration's block; its rows' observations are built now."""
        mask = self.student_block(self.iteration)
        if not np.array_equal(mask, self.env.student_mask):
            self.env.set_student_mask(mask)
            self.obs = {**self.obs, "student": self.env.observe()["student"]}

    def steps_cut_off(self, lengths: np.ndarray) -> np.ndarray:
        """Discounted count of the steps that episodes terminated after ``lengths`` steps
        would still have had: sum of gamma^k for k = 1 .. (time limit - length); to infinity
        for a task that does not say its time limit (``episode_steps``)."""
        gamma = self.cfg.ppo.gamma
        limit = getattr(self.env, "episode_steps", None)
        if limit is None:
            return np.full(len(lengths), gamma / (1.0 - gamma))
        left = np.maximum(int(limit) - np.asarray(lengths), 0)
        return gamma * (1.0 - gamma ** left) / (1.0 - gamma)

    # ------------------------------------------------------------------ roll-out
    def collect(self) -> dict[str, float]:
        """One roll-out of T steps in every environment; fills storage and buffer.

        Only what choosing an action needs runs per step. Values, the time-limit bootstrap
        and the method's reward shaping run once after the roll-out, over its distinct
        states; the policy (normalisers included) does not change during a roll-out, so
        this equals computing them step by step."""
        cfg, policy, st = self.cfg, self.policy, self.storage
        student_rows = torch.from_numpy(self.env.student_mask)
        successes: list[np.ndarray] = []
        returns: list[np.ndarray] = []
        truncations: list[tuple[int, np.ndarray, np.ndarray]] = []  # (t, envs, final o_T)
        skipped = torch.zeros_like(st.rewards)  # discounted steps a termination cut off
        self._student_states = []
        for t in range(cfg.ppo.rollout_steps):
            obs_t = torch.from_numpy(self.obs["teacher"])
            obs_s = to_torch(self.obs["student"])
            with torch.no_grad():
                out = policy.teacher_out(obs_t)
                teacher_actions = policy.decoder.sample(out)
            actions, for_teacher = self.method.choose_actions(
                teacher_actions, obs_s, self.generator, student_rows)
            with torch.no_grad():
                log_prob = policy.decoder.log_prob(out, actions)
            self.obs, reward, terminated, truncated, infos = self.env.step(actions.numpy())
            if truncated.any():  # time limit: bootstrapped from V(final state) below
                truncations.append((t, np.flatnonzero(truncated),
                                    infos["final_obs"]["teacher"][truncated]))
            st.obs[t] = obs_t
            st.actions[t] = actions
            st.log_prob[t] = log_prob
            st.rewards[t] = torch.from_numpy(reward)
            st.dones[t] = torch.from_numpy(terminated | truncated).float()
            st.for_teacher[t] = for_teacher
            student_obs = take(obs_s, student_rows)
            self.buffer.add(obs_t[student_rows], student_obs)
            if policy.normalizes:  # only the state vector is normalised: no images kept
                self._student_states.append(student_obs["state"] if isinstance(student_obs, dict)
                                            else student_obs)
            if terminated.any():
                lengths = infos["episode"]["l"][terminated]
                skipped[t, torch.from_numpy(np.flatnonzero(terminated))] = torch.from_numpy(
                    self.steps_cut_off(lengths)).to(skipped.dtype)
            if "_episode" in infos:
                ended = infos["_episode"]
                successes.append(infos["episode"]["success"][ended])
                returns.append(infos["episode"]["r"][ended])
        last_obs_t = torch.from_numpy(self.obs["teacher"])
        # Raw rewards, before the teacher's bootstrap below (HLRL's student learns from them).
        self.method.end_rollout(st.obs, st.rewards, st.dones, truncations, last_obs_t)
        rows = st.index_rows()
        with torch.no_grad():
            st.values = rows.gather(policy.value(rows.unique)).reshape(st.values.shape)
            last_value = policy.value(last_obs_t)
            if truncations:
                final_obs = np.concatenate([f for *_, f in truncations])
                finals = policy.value(torch.from_numpy(final_obs))
                steps = torch.cat([torch.full((len(e),), t) for t, e, _ in truncations])
                envs = torch.from_numpy(np.concatenate([e for _, e, _ in truncations]))
                st.rewards[steps, envs] += cfg.ppo.gamma * finals
        shaped, stats = self.method.shape_rewards(rows, st.rewards.reshape(-1),
                                                  skipped.reshape(-1))
        if self.count_bonus is not None:  # optional exploration aid, not part of any method
            bonus, bonus_stats = self.count_bonus.add_and_score(rows)
            shaped = shaped + bonus
            stats.update(bonus_stats)
        st.rewards = shaped.reshape(st.rewards.shape)
        st.compute_gae(last_value, cfg.ppo.gamma, cfg.ppo.gae_lambda)
        self.env_steps += cfg.ppo.rollout_steps * cfg.task.num_envs
        self.student_samples += cfg.ppo.rollout_steps * int(student_rows.sum())
        if successes:
            stats["train/teacher_success"] = float(np.concatenate(successes).mean())
            stats["train/episode_return"] = float(np.concatenate(returns).mean())
            stats["train/episodes"] = float(sum(len(s) for s in successes))
        return stats

    def update_normalizers(self) -> None:
        """Fold the last roll-out into the running observation normalisers (if any). Done
        after the updates, so a roll-out and the update that learns from it see the same
        normalisation (PPO's first ratio is exactly 1)."""
        if not self.policy.normalizes:
            return
        states = self._student_states
        student = torch.cat(states) if states else None
        self.policy.update_normalizers(self.storage.obs.reshape(-1, self.storage.obs.shape[-1]),
                                       student)
        self._student_states = []

    # ---------------------------------------------------------------- iteration
    def iterate(self) -> dict[str, float]:
        start = time.perf_counter()
        self.method.start_iteration(self.iteration, self.last_teacher_success,
                                    self.last_teacher_episodes)
        self.rotate_student_block()
        stats = self.collect()
        self.last_teacher_success = stats.get("train/teacher_success")
        self.last_teacher_episodes = int(stats.get("train/episodes", 0))
        rollout_time = time.perf_counter() - start
        if self.cfg.ppo.anneal_lr:
            remaining = 1.0 - self.iteration / self.cfg.train.iterations
            for group in self.ppo.optimizer.param_groups:
                group["lr"] = self.cfg.ppo.lr * max(remaining, 0.0)
        extra = self.method.extra_policy_loss
        stats.update(self.ppo.update(self.storage, self.generator, extra))
        stats.update(self.method.update_student(self.buffer, self.generator))
        self.update_normalizers()
        steps = self.cfg.ppo.rollout_steps * self.cfg.task.num_envs
        return self.finish_iteration(stats, start, steps, rollout_time)

    # ------------------------------------------------------------- checkpoints
    def state_dict(self, with_buffer: bool = True) -> dict[str, Any]:
        keep = with_buffer and self.cfg.train.checkpoint_buffer
        return {
            **self.base_state(),
            "method": self.method.state_dict(),
            "optimizers": {"ppo": self.ppo.optimizer.state_dict(),
                           **{k: o.state_dict() for k, o in self.method.optimizers().items()}},
            # Image buffers are large: optional (a resumed run then refills it).
            "buffer": self.buffer.state_dict() if keep else None,
            "count_bonus": self.count_bonus.state_dict() if self.count_bonus else None,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.load_base_state(state)
        self.method.load_state_dict(state["method"])
        self.ppo.optimizer.load_state_dict(state["optimizers"]["ppo"])
        for key, opt in self.method.optimizers().items():
            opt.load_state_dict(state["optimizers"][key])
        self.obs = self.env.observe()
        if state["buffer"] is not None:
            self.buffer.load_state_dict(state["buffer"])
        if self.count_bonus is not None:
            self.count_bonus.load_state_dict(state["count_bonus"])



def _postfix(stats: dict[str, float]) -> dict[str, str]:
    keys = {"train/teacher_success": "T(train)", "eval/teacher_success": "T",
            "eval/student_success": "S", "perf/env_steps_per_s": "steps/s"}
    return {short: (f"{stats[k]:.0f}" if "steps" in k else f"{stats[k]:.2f}")
            for k, short in keys.items() if k in stats}
