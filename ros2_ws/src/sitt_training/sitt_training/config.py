"""Run configuration: YAML presets plus ``section.key=value`` overrides, validated on load.

Every coefficient has the paper's value as its default where the paper gives one; the
others say where they come from. Errors name the bad key.
"""

from __future__ import annotations

import dataclasses
import difflib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_type_hints

import yaml

METHODS = ("sitt", "noalign", "bc", "dagger", "tsra", "hlrl", "dwbc", "l2t", "cosil")
# Methods on the off-policy (SAC) core, trained by ``offpolicy_trainer.OffPolicyTrainer``;
# the others share the PPO ``trainer.Trainer``.
OFF_POLICY_METHODS = ("l2t", "cosil")
# On-policy methods whose student learns from its own episodes in fixed environments.
FIXED_STUDENT_ENV_METHODS = ("hlrl",)
# SITT's paper comparison (the quadrotor and arm benchmarks run these four).
SITT_COMPARISON = ("sitt", "noalign", "bc", "dagger")


def _config_dir() -> Path:
    """Shipped presets: the source tree (pip -e), else the colcon install's share/."""
    source = Path(__file__).resolve().parent.parent / "config"
    if source.is_dir():
        return source
    try:
        from ament_index_python.packages import get_package_share_directory

        return Path(get_package_share_directory("sitt_training")) / "config"
    except (ImportError, LookupError):
        return source


CONFIG_DIR = _config_dir()


class ConfigError(ValueError):
    """A configuration problem, with the offending key in the message."""


@dataclass
class TaskConfig:
    name: str = "color_maze"
    num_envs: int = 1000  # paper, color maze
    student_envs: int = 1000  # envs that build the student observation every step
    # Each roll-out renders the next block of student_envs environments (wrapping), not
    # always the first ones: the paired samples then come from many more layouts for the same
    # rendering cost (docs/quadrotor_tuning.md, session 13). Only for methods whose student
    # never acts (dagger and hlrl act in the first environments). Not in any paper.
    rotate_student_envs: bool = False
    kwargs: dict[str, Any] = field(default_factory=dict)  # passed to the task class
    # Task options (names in kwargs, numbers) that ramp in during training (schedules.py):
    # 0 until the teacher's roll-out success first reaches ramp_after_success, then
    # linearly to their kwargs value over ramp_iterations. Evaluation always uses the full
    # values. Not in any paper: a reward term that would keep the teacher from finding the
    # task at all can be added once it has (docs/quadrotor_tuning.md, session 12).
    ramp_options: list[str] = field(default_factory=list)
    ramp_after_success: float = 0.0
    ramp_iterations: int = 0


@dataclass
class PPOConfig:
    rollout_steps: int = 250  # paper, color maze
    epochs: int = 4
    minibatches: int = 4
    lr: float = 1e-3
    anneal_lr: bool = False  # linear decay to 0 over train.iterations (teacher's optimiser)
    # Adaptive learning rate (0: off): before each minibatch step the approximate KL between the
    # roll-out policy and the updated one is compared with this target; the teacher's lr is
    # divided by 1.5 when KL > 2 * target and multiplied by 1.5 when KL < target / 2, within
    # [lr_min, lr_max]. Not in the paper; it keeps long continuous-control runs stable.
    desired_kl: float = 0.0
    lr_min: float = 1e-5
    lr_max: float = 1e-2
    gamma: float = 0.99
    gae_lambda: float = 0.95
    clip: float = 0.2
    entropy_coef: float = 0.3  # paper, color maze
    value_coef: float = 0.5
    max_grad_norm: float = 1.0
    init_log_std: float = 0.0  # continuous actions only
    # Floor on the shared log-std (continuous actions); a large negative value (the default)
    # is no floor. Not in the paper: see ActionDecoder.effective_log_std.
    min_log_std: float = -20.0
    # Count-based exploration bonus count_bonus / sqrt(n(s)) on the teacher's reward
    # (exploration.py). Not in the paper: 0 (the default) is off. States are counted
    # exactly (count_bonus_bits 0, for grid tasks) or by a SimHash of that many bits.
    count_bonus: float = 0.0
    count_bonus_bits: int = 0


@dataclass
class MethodConfig:
    name: str = "sitt"
    kl_reward_coef: float = 0.5  # lambda_r; the paper gives none for the maze (see docs)
    kl_grad_coef: float = 0.001  # lambda_g; paper, color maze
    # Optional warm-up of both KL terms (not in the paper, which uses them from the start):
    # plain PPO until the teacher's success rate in a roll-out first reaches
    # kl_after_success, then lambda_r and lambda_g ramp up linearly over kl_ramp
    # iterations. 0 and 0: the paper's constant coefficients. The rate is the previous
    # roll-out's (kl_success_episodes 0), or that of the latest roll-outs that together
    # ended at least kl_success_episodes episodes (schedules.SuccessRamp).
    kl_after_success: float = 0.0
    kl_ramp: int = 0
    kl_success_episodes: int = 0
    # Not in the paper: charge lambda_r * (KL - the roll-out's mean KL) instead, a penalty that
    # is zero on average. The paper's always-negative penalty pays a teacher to end its
    # episode early where a crash ends it (docs/quadrotor_tuning.md, session 14).
    kl_reward_centered: bool = False
    # Not in the paper either: keep the plain penalty, but a termination (a crash, not the
    # time limit) also pays lambda_r * (roll-out mean KL) for every step it cut off,
    # discounted, so ending early escapes nothing on average and staying earns no bonus.
    kl_reward_terminal: bool = False
    align_iterations: int = 20  # paper, color maze: 20 per roll-out
    align_batch_size: int = 0  # 0: the whole buffer as one batch (paper, color maze)
    align_lr: float = 1e-3
    buffer_size: int = 250_000  # FIFO of paired (o_T, o_S); maze: one roll-out
    dagger_envs: int = 250  # DAgger: envs where the student may act
    dagger_beta0: float = 1.0  # DAgger: teacher's share of actions at iteration 0
    dagger_beta_decay: float = 0.9  # DAgger: beta_k = beta0 * decay^k
    # HLRL (methods/hlrl.py): the student acts in the first hlrl_envs envs and minimises PPO's
    # loss on its own transitions (the ppo section's settings, its own critic V_S(o_T)) plus
    # w_k * KL(pi_T || pi_S), w_k = hlrl_bc_coef * hlrl_bc_decay^k. Neither the SITT paper nor
    # METHODS.md gives w0 or the rate: BC and RL start at equal weight, and the weight decays
    # as DAgger's beta; the envs are DAgger's dagger_envs (a quarter of the maze's 1000).
    hlrl_envs: int = 250
    hlrl_bc_coef: float = 1.0
    hlrl_bc_decay: float = 0.9
    # DWBC (methods/dwbc.py), offline on the paired buffer: alpha and eta are the defaults of
    # the authors' code (github.com/ryanxhr/DWBC, main.py: alpha 10, eta 0.5); the
    # discriminator's output is clipped to [c, 1 - c] with c = 0.1 as there. The hidden
    # widths are ours (the policy MLPs' width; the authors' discriminator is 256 wide).
    dwbc_alpha: float = 10.0
    dwbc_eta: float = 0.5
    dwbc_d_clip: float = 0.1
    dwbc_hidden: list[int] = field(default_factory=lambda: [64, 64])
    # TSRA (METHODS.md section 2): encoders minimise L_CL + a * L_align + s * L_stab (the
    # paper: a = s = 1; 0 gives its "w/o alignment" / "w/o stability" ablations).
    tsra_align_coef: float = 1.0
    tsra_stability_coef: float = 1.0
    tsra_init_temperature: float = 0.1  # InfoNCE temperature tau at the start (learnable)
    # L2T (METHODS.md section 3): the student minimises
    #   l2t_bc_coef * ||pi_S(o) - pi_T(s)||_1 + l2t_q_coef * (-Q_T(s, pi_S(o))) [/ mean |Q_T|]
    # on the teacher's SAC minibatch (the paper sums L1 BC and its asymmetric loss: 1 and 1).
    # With l2t_q_normalize the critic term is divided by the batch's mean |Q_T| (detached,
    # as in TD3+BC): Q grows to hundreds on locomotion tasks and would drown the BC term.
    # Not in the paper, which gives no scale for the asymmetric loss.
    l2t_bc_coef: float = 1.0
    l2t_q_coef: float = 1.0
    l2t_q_normalize: bool = True
    # Noise curriculum: the student's noise scale ramps linearly from 0 to the task's alpha
    # over this fraction of train.iterations (the paper ramps "gradually" and gives no
    # length; 0: the full alpha from the start).
    l2t_curriculum: float = 0.5
    # COSIL (METHODS.md section 4; methods/cosil.py): the student is SAC on its own noisy
    # observations, acting in the first cosil_student_envs of task.num_envs environments
    # (the SAC teacher acts on true states in the others), with SAC's entropy term replaced
    # by beta * KL(pi_S(.|o) || pi_T(.|s)). beta is a dual variable learnt like SAC's
    # temperature (Adam, sac.lr) that keeps the student's mean KL near
    # cosil_target_divergence * |A| nats, projected onto (0, cosil_max_beta]. None of these
    # values is in the SITT paper or METHODS.md: 0.5 nats per action dimension is the KL of
    # two equal-width Gaussians whose means are one standard deviation apart (the student
    # may deviate within the teacher's own exploration noise); beta starts at 1.0 like
    # SAC's temperature (SB3); the cap 1.0 weighs a nat like a unit of reward per step
    # (without it beta grew to ~1600 on pendulum and the student's critic diverged; see
    # methods/cosil.py); the closed form ("analytic") is the exact KL of the squashed
    # policies ("sample": the one-sample estimate log pi_S(a|o) - log pi_T(a|s)).
    # Presets set the env split.
    cosil_student_envs: int = 1
    cosil_target_divergence: float = 0.5
    cosil_init_beta: float = 1.0
    cosil_max_beta: float = 1.0
    cosil_divergence: str = "analytic"


@dataclass
class SACConfig:
    """Soft actor-critic, the teacher of the off-policy methods (``l2t``, ``cosil``; also
    COSIL's student, per agent). Defaults are
    Stable-Baselines3's SAC, which the L2T paper uses unchanged with gamma 0.99 (its
    section 4.1.1): Adam 3e-4 for actor, critics and temperature, 1M buffer, batch 256,
    tau 0.005, 100 random-action transitions first, temperature learnt from 1.0 towards
    the target entropy -|A|, [256, 256] ReLU networks."""

    lr: float = 3e-4
    gamma: float = 0.99  # the paper: 0.99 on every MuJoCo task
    tau: float = 0.005  # Polyak averaging of the target critics
    batch_size: int = 256
    buffer_size: int = 1_000_000  # transitions
    learning_starts: int = 100  # transitions with uniform random actions before updates
    # An iteration is rollout_steps vector steps (num_envs transitions each), each followed
    # by gradient_steps updates: gradient_steps / num_envs updates per transition (SB3's
    # train_freq 1, gradient_steps 1 with one env is 1).
    rollout_steps: int = 1
    gradient_steps: int = 1
    init_temperature: float = 1.0
    target_entropy_scale: float = 1.0  # target entropy = -scale * |A|
    actor_hidden: list[int] = field(default_factory=lambda: [256, 256])  # also the student's
    critic_hidden: list[int] = field(default_factory=lambda: [256, 256])


@dataclass
class NetworkConfig:
    feature_dim: int = 32
    hidden: list[int] = field(default_factory=lambda: [64, 64])
    critic_hidden: list[int] = field(default_factory=lambda: [64, 64])
    # Student CNN for camera tasks: output channels per conv layer (each halves the image).
    cnn_channels: list[int] = field(default_factory=lambda: [16, 32, 32, 64])
    # Running mean/std normalisation of the teacher observation and the student's state
    # vector (continuous-control tasks; the student's is part of the exported graph).
    normalize_obs: bool = False
    # Hidden layers of the shared decoder D before its output layer (default: D is linear,
    # as in SITT). TSRA's policy network reads a fixed, contrastively learned embedding.
    decoder_hidden: list[int] = field(default_factory=list)
    # Camera tasks: before training, pretrain the student's CNN trunk on this many rendered
    # views labelled with what they show (the quadrotor: a pillar scan), for this many
    # epochs; 0: off. A stand-in for the paper's pretrained DINOv2 (image_pretrain.py).
    pretrain_views: int = 0
    pretrain_epochs: int = 6
    # Keep the pretrained trunk fixed during training (the paper freezes DINOv2); else the
    # alignment losses fine-tune it.
    freeze_trunk: bool = False


@dataclass
class TrainConfig:
    seed: int = 0
    iterations: int = 40
    checkpoint_every: int = 10
    eval_every: int = 5  # iterations between validation evaluations (0: never)
    eval_episodes: int = 200  # per validation evaluation
    # Keep the networks of the validation-best iteration (student success, then teacher's)
    # as best_model.pt next to the checkpoints; `sitt-eval RUN --checkpoint best` uses it.
    keep_best: bool = True
    torch_threads: int = 2
    # Save the paired buffer in checkpoints (exact resume). For image tasks it is large
    # (12 kB per 64x64 image): there, presets turn it off and a resumed run refills it.
    checkpoint_buffer: bool = True
    # Before the first iteration: this many episodes of the task's scripted expert, and the
    # teacher's actor and critic fitted to them for demo_epochs (teacher_demos.py); 0: off.
    teacher_demos: int = 0  # episodes per round
    demo_epochs: int = 30  # passes over the labelled episodes after each round
    # Rounds in all; in each after the first the fitted teacher acts and the expert labels
    # the states it reaches (DAgger).
    demo_rounds: int = 1
    # Std of Gaussian noise added to the executed actions (the labels stay the expert's).
    demo_noise: float = 0.0


@dataclass
class Config:
    task: TaskConfig = field(default_factory=TaskConfig)
    method: MethodConfig = field(default_factory=MethodConfig)
    ppo: PPOConfig = field(default_factory=PPOConfig)
    sac: SACConfig = field(default_factory=SACConfig)  # off-policy methods only
    network: NetworkConfig = field(default_factory=NetworkConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _suggest(key: str, known: list[str]) -> str:
    close = difflib.get_close_matches(key, known, n=1)
    return f"; did you mean {close[0]!r}?" if close else f"; known keys: {', '.join(known)}"


def _coerce(path: str, value: Any, kind: Any) -> Any:
    """Check one value against its field's annotated type."""
    if kind is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{path}: expected true/false, got {value!r}")
        return value
    if kind is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{path}: expected an integer, got {value!r}")
        return value
    if kind is float:
        if isinstance(value, str):  # YAML 1.1 reads "1e-4" (no dot) as a string
            try:
                value = float(value)
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{path}: expected a number, got {value!r}")
        return float(value)
    if kind is str:
        if not isinstance(value, str):
            raise ConfigError(f"{path}: expected a string, got {value!r}")
        return value
    if getattr(kind, "__origin__", None) is list:
        if not isinstance(value, list):
            raise ConfigError(f"{path}: expected a list, got {value!r}")
        # Each item is checked as a field of the item type, so the error names its index.
        return [_coerce(f"{path}[{i}]", v, kind.__args__[0]) for i, v in enumerate(value)]
    if getattr(kind, "__origin__", None) is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{path}: expected a mapping, got {value!r}")
        return value
    raise ConfigError(f"{path}: unsupported field type {kind}")


def _build(cls: type, data: dict[str, Any], prefix: str) -> Any:
    if not isinstance(data, dict):
        raise ConfigError(f"{prefix or 'config'}: expected a mapping, got {data!r}")
    hints = get_type_hints(cls)
    known = [f.name for f in dataclasses.fields(cls)]
    for key in data:
        if key not in known:
            where = f"{prefix}.{key}" if prefix else key
            raise ConfigError(f"unknown config key {where!r}{_suggest(key, known)}")
    values = {}
    for name in known:
        if name not in data:
            continue
        path = f"{prefix}.{name}" if prefix else name
        kind = hints[name]
        if dataclasses.is_dataclass(kind):
            values[name] = _build(kind, data[name] or {}, path)
        else:
            values[name] = _coerce(path, data[name], kind)
    return cls(**values)


def validate(cfg: Config) -> Config:
    """Value checks that types alone cannot express."""
    positive = {
        "task.num_envs": cfg.task.num_envs,
        "ppo.rollout_steps": cfg.ppo.rollout_steps,
        "ppo.epochs": cfg.ppo.epochs,
        "ppo.minibatches": cfg.ppo.minibatches,
        "ppo.lr": cfg.ppo.lr,
        "method.align_lr": cfg.method.align_lr,
        "method.buffer_size": cfg.method.buffer_size,
        "network.feature_dim": cfg.network.feature_dim,
        "train.iterations": cfg.train.iterations,
        "train.checkpoint_every": cfg.train.checkpoint_every,
        "train.torch_threads": cfg.train.torch_threads,
        "method.tsra_init_temperature": cfg.method.tsra_init_temperature,
        "network.pretrain_epochs": cfg.network.pretrain_epochs,
        "train.demo_epochs": cfg.train.demo_epochs,
        "train.demo_rounds": cfg.train.demo_rounds,
    }
    for key, value in positive.items():
        if value <= 0:
            raise ConfigError(f"{key}: must be > 0, got {value}")
    non_negative = {
        "method.kl_reward_coef": cfg.method.kl_reward_coef,
        "method.kl_grad_coef": cfg.method.kl_grad_coef,
        "method.kl_ramp": cfg.method.kl_ramp,
        "method.kl_success_episodes": cfg.method.kl_success_episodes,
        "task.ramp_iterations": cfg.task.ramp_iterations,
        "method.align_iterations": cfg.method.align_iterations,
        "method.align_batch_size": cfg.method.align_batch_size,
        "ppo.entropy_coef": cfg.ppo.entropy_coef,
        "ppo.count_bonus": cfg.ppo.count_bonus,
        "ppo.desired_kl": cfg.ppo.desired_kl,
        "train.eval_every": cfg.train.eval_every,
        "train.seed": cfg.train.seed,
        "method.dagger_envs": cfg.method.dagger_envs,
        "method.tsra_align_coef": cfg.method.tsra_align_coef,
        "method.tsra_stability_coef": cfg.method.tsra_stability_coef,
        "network.pretrain_views": cfg.network.pretrain_views,
        "train.teacher_demos": cfg.train.teacher_demos,
        "train.demo_noise": cfg.train.demo_noise,
    }
    for key, value in non_negative.items():
        if value < 0:
            raise ConfigError(f"{key}: must be >= 0, got {value}")
    if cfg.network.freeze_trunk and cfg.network.pretrain_views == 0:
        raise ConfigError("network.freeze_trunk: needs network.pretrain_views > 0 (a frozen "
                          "trunk that was never trained would keep its random weights)")
    if cfg.method.name not in METHODS:
        raise ConfigError(
            f"method.name: unknown method {cfg.method.name!r}; known: {', '.join(METHODS)}"
        )
    if cfg.method.name in OFF_POLICY_METHODS:
        _validate_off_policy(cfg)
    elif not 0 < cfg.task.student_envs <= cfg.task.num_envs:
        raise ConfigError(
            f"task.student_envs: must be in 1..task.num_envs ({cfg.task.num_envs}), "
            f"got {cfg.task.student_envs}"
        )
    if cfg.task.rotate_student_envs and cfg.method.name in FIXED_STUDENT_ENV_METHODS:
        raise ConfigError(
            f"task.rotate_student_envs: {cfg.method.name}'s student learns from whole "
            f"episodes of its own in the first environments, so they cannot rotate; set it false")
    if cfg.method.name == "dagger" and not cfg.method.dagger_envs <= cfg.task.student_envs:
        raise ConfigError(
            f"method.dagger_envs: the student can only act where it observes, so it must be "
            f"<= task.student_envs ({cfg.task.student_envs}), got {cfg.method.dagger_envs}"
        )
    _validate_hlrl_dwbc(cfg)
    for name in cfg.task.ramp_options:
        value = cfg.task.kwargs.get(name)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"task.ramp_options: {name!r} must be a number in task.kwargs "
                              f"(the value it ramps to), got {value!r}")
    for key in ("ppo.gamma", "ppo.gae_lambda", "method.dagger_beta0", "method.dagger_beta_decay",
                "method.kl_after_success", "task.ramp_after_success"):
        section, name = key.split(".")
        value = getattr(getattr(cfg, section), name)
        if not 0.0 <= value <= 1.0:
            raise ConfigError(f"{key}: must be in [0, 1], got {value}")
    if not 0 <= cfg.ppo.count_bonus_bits <= 63:
        raise ConfigError(f"ppo.count_bonus_bits: must be in 0..63, got {cfg.ppo.count_bonus_bits}")
    if cfg.ppo.desired_kl > 0:
        if cfg.ppo.anneal_lr:
            raise ConfigError("ppo.desired_kl: the adaptive learning rate and ppo.anneal_lr "
                              "both set the lr; use one of them")
        if not 0 < cfg.ppo.lr_min <= cfg.ppo.lr <= cfg.ppo.lr_max:
            raise ConfigError(f"ppo.lr: with ppo.desired_kl it must lie in [ppo.lr_min, "
                              f"ppo.lr_max] = [{cfg.ppo.lr_min}, {cfg.ppo.lr_max}], "
                              f"got {cfg.ppo.lr}")
    batch = cfg.task.num_envs * cfg.ppo.rollout_steps
    if batch < cfg.ppo.minibatches:
        raise ConfigError(f"ppo.minibatches: {cfg.ppo.minibatches} exceeds the batch ({batch})")
    from .envs import TASKS  # late import: keeps config importable without the tasks

    if cfg.task.name not in TASKS:
        raise ConfigError(f"task.name: unknown task {cfg.task.name!r}; known: {', '.join(TASKS)}")
    return cfg


def _validate_hlrl_dwbc(cfg: Config) -> None:
    """HLRL's and DWBC's values (checked whatever the method, as the others are)."""
    method = cfg.method
    for key, value in {"method.hlrl_bc_coef": method.hlrl_bc_coef,
                       "method.dwbc_alpha": method.dwbc_alpha}.items():
        if value < 0:
            raise ConfigError(f"{key}: must be >= 0, got {value}")
    for key, value in {"method.hlrl_bc_decay": method.hlrl_bc_decay,
                       "method.dwbc_eta": method.dwbc_eta}.items():
        if not 0.0 <= value <= 1.0:
            raise ConfigError(f"{key}: must be in [0, 1], got {value}")
    if not 0.0 < method.dwbc_d_clip < 0.5:
        raise ConfigError(f"method.dwbc_d_clip: must be in (0, 0.5), got {method.dwbc_d_clip}")
    if not method.dwbc_hidden or min(method.dwbc_hidden) <= 0:
        raise ConfigError(f"method.dwbc_hidden: must be a non-empty list of positive widths, "
                          f"got {method.dwbc_hidden}")
    clip = method.dwbc_d_clip
    floor = method.dwbc_eta / (clip * (1.0 - clip))
    if method.name == "dwbc" and method.dwbc_alpha < floor:
        raise ConfigError(f"method.dwbc_alpha: must be >= dwbc_eta / (c (1 - c)) = {floor:.4g} "
                          f"(c = dwbc_d_clip), or teacher labels get negative weights; got "
                          f"{method.dwbc_alpha}")
    if method.name == "hlrl" and not 0 < method.hlrl_envs <= cfg.task.student_envs:
        raise ConfigError(
            f"method.hlrl_envs: the student can only act where it observes, so it must be in "
            f"1..task.student_envs ({cfg.task.student_envs}), got {method.hlrl_envs}")
    if method.name == "hlrl" and not method.hlrl_envs < cfg.task.num_envs:
        raise ConfigError(f"method.hlrl_envs: must be < task.num_envs ({cfg.task.num_envs}): "
                          f"the teacher learns from the other envs, got {method.hlrl_envs}")


def _validate_off_policy(cfg: Config) -> None:
    """SAC, L2T and COSIL values. ``task.student_envs`` is not used: an L2T student never
    observes the environment during training (the trainer makes its noisy observations);
    a COSIL student observes where it acts (``method.cosil_student_envs``)."""
    sac, method = cfg.sac, cfg.method
    if cfg.train.teacher_demos:
        raise ConfigError("train.teacher_demos: starts a PPO teacher; the off-policy methods "
                          f"({method.name}) have none")
    positive = {"sac.lr": sac.lr, "sac.batch_size": sac.batch_size,
                "sac.buffer_size": sac.buffer_size, "sac.rollout_steps": sac.rollout_steps,
                "sac.init_temperature": sac.init_temperature}
    for key, value in positive.items():
        if value <= 0:
            raise ConfigError(f"{key}: must be > 0, got {value}")
    non_negative = {"sac.learning_starts": sac.learning_starts,
                    "sac.gradient_steps": sac.gradient_steps,
                    "method.l2t_bc_coef": method.l2t_bc_coef,
                    "method.l2t_q_coef": method.l2t_q_coef}
    for key, value in non_negative.items():
        if value < 0:
            raise ConfigError(f"{key}: must be >= 0, got {value}")
    for key, value in {"sac.gamma": sac.gamma, "method.l2t_curriculum": method.l2t_curriculum
                       }.items():
        if not 0.0 <= value <= 1.0:
            raise ConfigError(f"{key}: must be in [0, 1], got {value}")
    if not 0.0 < sac.tau <= 1.0:
        raise ConfigError(f"sac.tau: must be in (0, 1], got {sac.tau}")
    if sac.buffer_size < cfg.task.num_envs:
        raise ConfigError(f"sac.buffer_size: must hold one vector step (task.num_envs = "
                          f"{cfg.task.num_envs}), got {sac.buffer_size}")
    for key, widths in {"sac.actor_hidden": sac.actor_hidden,
                        "sac.critic_hidden": sac.critic_hidden}.items():
        if not widths or min(widths) <= 0:
            raise ConfigError(f"{key}: must be a non-empty list of positive widths, got {widths}")
    if method.name == "cosil":
        _validate_cosil(cfg)
    from .envs import TASKS

    task = TASKS.get(cfg.task.name)
    if task is not None and not getattr(task, "noisy_state_student", False):
        noisy = sorted(n for n, t in TASKS.items() if getattr(t, "noisy_state_student", False))
        raise ConfigError(f"task.name: method {method.name!r} needs a task whose student "
                          f"observation is the L2T-noisy teacher state ({', '.join(noisy)}), "
                          f"got {cfg.task.name!r}")


def _validate_cosil(cfg: Config) -> None:
    method = cfg.method
    if not 0 < method.cosil_student_envs < cfg.task.num_envs:
        raise ConfigError(
            f"method.cosil_student_envs: must be in 1..task.num_envs - 1 "
            f"({cfg.task.num_envs - 1}): the student acts in these envs, the teacher in the "
            f"others; got {method.cosil_student_envs}")
    for key, value in {"method.cosil_target_divergence": method.cosil_target_divergence,
                       "method.cosil_init_beta": method.cosil_init_beta,
                       "method.cosil_max_beta": method.cosil_max_beta}.items():
        if not value > 0:
            raise ConfigError(f"{key}: must be > 0, got {value}")
    if method.cosil_init_beta > method.cosil_max_beta:
        raise ConfigError(f"method.cosil_init_beta: must be <= method.cosil_max_beta "
                          f"({method.cosil_max_beta}), got {method.cosil_init_beta}")
    if method.cosil_divergence not in ("analytic", "sample"):
        raise ConfigError(f"method.cosil_divergence: must be 'analytic' or 'sample', got "
                          f"{method.cosil_divergence!r}")


def parse_override(text: str) -> tuple[list[str], Any]:
    """``"ppo.lr=3e-4"`` -> (["ppo", "lr"], 0.0003); the value is read as YAML."""
    if "=" not in text:
        raise ConfigError(f"override {text!r}: expected section.key=value")
    key, raw = text.split("=", 1)
    parts = key.strip().split(".")
    if len(parts) < 2 or not all(parts):
        raise ConfigError(f"override {text!r}: the key must look like section.key")
    try:
        value = yaml.safe_load(raw)
    except yaml.YAMLError as err:
        raise ConfigError(f"override {text!r}: value is not valid YAML ({err})") from err
    return parts, value


def _set(data: dict[str, Any], parts: list[str], value: Any) -> None:
    for part in parts[:-1]:
        node = data.setdefault(part, {})
        if not isinstance(node, dict):
            raise ConfigError(f"override: {'.'.join(parts)} goes through a non-mapping value")
        data = node
    data[parts[-1]] = value


def read_yaml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML ({err})") from err
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of sections")
    return data


def preset_path(task: str, method: str) -> Path:
    """The shipped preset for a task x method pair."""
    return CONFIG_DIR / f"{task}_{method}.yaml"


def load_config(
    path: str | Path | None = None,
    overrides: list[str] | None = None,
    data: dict[str, Any] | None = None,
) -> Config:
    """Build a validated Config from a YAML file (or a dict) plus overrides."""
    merged: dict[str, Any] = read_yaml(path) if path is not None else {}
    for section, values in (data or {}).items():
        if isinstance(values, dict) and isinstance(merged.get(section), dict):
            merged[section].update(values)
        else:
            merged[section] = values
    for text in overrides or []:
        parts, value = parse_override(text)
        _set(merged, parts, value)
    return validate(_build(Config, merged, ""))


def resolved_config(data: Any) -> dict[str, Any] | None:
    """A config recorded earlier (a dict, e.g. from a benchmark row) as this code resolves
    it: options added since take their defaults, so adding an option does not make old
    records stale, while a changed value or default does. None when it no longer loads."""
    if not isinstance(data, dict):
        return None
    try:
        return load_config(data=data).to_dict()
    except ConfigError:
        return None


def save_config(cfg: Config, path: str | Path) -> None:
    Path(path).write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False))
