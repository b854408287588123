"""Networks shared by every method (METHODS.md, notation).

* ``teacher_encoder`` E_T(o_T) -> z, ``student_encoder`` E_S(o_S) -> z (an MLP for vector
  observations, ``ImageStateEncoder`` for camera image + proprioception),
  ``proxy_encoder`` E_P(o_T) -> z (predicts the student's features from teacher input);
* ``decoder`` D(z): one linear layer to logits (discrete) or the action mean (continuous),
  plus the state-independent log-std that teacher and student share;
* ``critic`` V(o_T), privileged.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


def mlp(in_dim: int, hidden: Sequence[int], out_dim: int,
        activation: type[nn.Module] = nn.ELU) -> nn.Sequential:
    """MLP with a linear output layer: ELU for the PPO methods, ReLU for SAC's networks."""
    layers: list[nn.Module] = []
    for width in hidden:
        layers += [nn.Linear(in_dim, width), activation()]
        in_dim = width
    layers.append(nn.Linear(in_dim, out_dim))
    return nn.Sequential(*layers)


class RunningNorm(nn.Module):
    """Per-feature standardisation with running statistics, ``(x - mean) / std`` clipped to
    +-``clip``. Statistics change only through ``update`` (called by the trainer on roll-out
    data), never by gradients; they are buffers, so checkpoints and exports carry them.

    Why: continuous-control observations mix scales (a tilt of a few hundredths in a
    rotation-matrix entry next to pillar offsets of metres); standardised inputs let PPO
    learn the small, decisive ones quickly."""

    def __init__(self, dim: int, clip: float = 10.0) -> None:
        super().__init__()
        self.clip = clip
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("var", torch.ones(dim))
        self.register_buffer("count", torch.zeros((), dtype=torch.float64))

    @torch.no_grad()
    def update(self, x: torch.Tensor) -> None:
        """Merge a batch's mean and variance into the running ones (Chan et al.)."""
        x = x.reshape(-1, self.mean.shape[0]).double()
        n = x.shape[0]
        if n == 0:
            return
        batch_mean, batch_var = x.mean(dim=0), x.var(dim=0, unbiased=False)
        total = self.count + n
        delta = batch_mean - self.mean.double()
        mean = self.mean.double() + delta * n / total
        m2 = self.var.double() * self.count + batch_var * n + delta**2 * self.count * n / total
        self.mean.copy_(mean.float())
        self.var.copy_((m2 / total).float())
        self.count.fill_(float(total))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = (x - self.mean) / torch.sqrt(self.var + 1e-8)
        return z.clamp(-self.clip, self.clip)


class ImageStateEncoder(nn.Module):
    """E_S for ``{"image": uint8 (N, H, W, 3), "state": (N, D)}``: a small CNN on the image,
    its features joined with the state vector, then an ELU MLP to z.

    The image preprocessing (uint8 -> float, HWC -> CHW, scaling) happens here, inside the
    network, so an exported student takes raw camera pixels (DESIGN.md)."""

    def __init__(self, image_shape: Sequence[int], state_dim: int, feature_dim: int,
                 hidden: Sequence[int], channels: Sequence[int] = (16, 32, 32, 64),
                 image_dim: int = 128, normalize_state: bool = False) -> None:
        super().__init__()
        self.state_norm = RunningNorm(state_dim) if normalize_state else nn.Identity()
        height, width, depth = image_shape
        layers: list[nn.Module] = []
        for i, out_ch in enumerate(channels):
            kernel = 5 if i == 0 else 3  # each layer halves the resolution
            layers += [nn.Conv2d(depth, out_ch, kernel, stride=2, padding=kernel // 2), nn.ELU()]
            depth = out_ch
        self.conv = nn.Sequential(*layers, nn.Flatten())
        with torch.no_grad():
            flat = self.conv(torch.zeros(1, image_shape[2], height, width)).shape[1]
        self.image_head = nn.Sequential(nn.Linear(flat, image_dim), nn.ELU())
        self.head = mlp(image_dim + state_dim, hidden, feature_dim)

    def image_features(self, image: torch.Tensor) -> torch.Tensor:
        """The trunk (CNN and its linear layer) on uint8 ``(N, H, W, 3)`` images."""
        pixels = image.permute(0, 3, 1, 2).float() * (1.0 / 255.0) - 0.5
        return self.image_head(self.conv(pixels))

    def trunk_parameters(self) -> list[nn.Parameter]:
        """What ``image_features`` learns (``image_pretrain`` trains and may freeze it)."""
        return [*self.conv.parameters(), *self.image_head.parameters()]

    def forward(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        features = self.image_features(obs["image"])
        state = self.state_norm(obs["state"].float())
        return self.head(torch.cat([features, state], dim=-1))


def student_encoder_for(space: gym.Space, feature_dim: int, hidden: Sequence[int],
                        channels: Sequence[int] = (16, 32, 32, 64),
                        normalize: bool = False) -> nn.Module:
    """E_S for a task's student observation space."""
    if isinstance(space, gym.spaces.Dict):
        if set(space.spaces) != {"image", "state"}:
            raise ValueError(f"a Dict student space needs exactly 'image' and 'state', "
                             f"got {sorted(space.spaces)}")
        return ImageStateEncoder(space["image"].shape, int(space["state"].shape[0]),
                                 feature_dim, hidden, channels, normalize_state=normalize)
    dim = int(np.prod(space.shape))
    if normalize:
        return nn.Sequential(RunningNorm(dim), mlp(dim, hidden, feature_dim))
    return mlp(dim, hidden, feature_dim)


@dataclass(frozen=True)
class ActionSpec:
    """What the decoder outputs: ``n`` logits (discrete) or an ``n``-dim Gaussian mean."""

    discrete: bool
    n: int

    @classmethod
    def from_space(cls, space: gym.Space) -> ActionSpec:
        if isinstance(space, gym.spaces.Discrete):
            return cls(True, int(space.n))
        if isinstance(space, gym.spaces.Box) and len(space.shape) == 1:
            return cls(False, int(space.shape[0]))
        raise ValueError(f"unsupported action space {space}")


class UnitNorm(nn.Module):
    """``z / ||z||``: embeddings on the unit sphere (TSRA's shared embedding space)."""

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return F.normalize(z, dim=-1)


class ActionDecoder(nn.Module):
    """The shared decoder D. Updated only by the teacher's RL loss.

    One linear layer by default (SITT); with ``hidden`` an ELU MLP first (TSRA's policy
    network, which must map a fixed, contrastively learned embedding to actions)."""

    def __init__(self, feature_dim: int, spec: ActionSpec, init_log_std: float = 0.0,
                 min_log_std: float | None = None, hidden: Sequence[int] = ()) -> None:
        super().__init__()
        self.spec = spec
        layers: list[nn.Module] = []
        for width in hidden:
            layers += [nn.Linear(feature_dim, width), nn.ELU()]
            feature_dim = width
        self.body = nn.Sequential(*layers)  # empty: no parameters, old checkpoints load
        self.linear = nn.Linear(feature_dim, spec.n)
        nn.init.orthogonal_(self.linear.weight, gain=0.01)  # near-uniform initial policy
        nn.init.zeros_(self.linear.bias)
        self.log_std = None if spec.discrete else nn.Parameter(torch.full((spec.n,), init_log_std))
        # Optional floor on the shared log-std: the Gaussian KL grows as 1/sigma^2, so
        # without one a shrinking sigma lets SITT's KL terms outgrow the task reward.
        self.min_log_std = min_log_std

    def effective_log_std(self) -> torch.Tensor:
        """The shared log-std, clamped at the floor (if any); the gradient stops below it."""
        if self.min_log_std is None:
            return self.log_std
        return self.log_std.clamp(min=self.min_log_std)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """Logits or mean."""
        return self.linear(self.body(z))

    def frozen(self, z: torch.Tensor) -> torch.Tensor:
        """The same output, with the decoder's weights detached: gradients reach ``z`` only.

        Used by the student-side losses, which must never move the decoder."""
        if len(self.body) == 0:  # the common case, without functional_call's overhead
            return F.linear(z, self.linear.weight.detach(), self.linear.bias.detach())
        detached = {name: value.detach() for name, value in self.named_parameters()}
        return torch.func.functional_call(self, detached, (z,))

    def distribution(self, out: torch.Tensor) -> torch.distributions.Distribution:
        if self.spec.discrete:
            return torch.distributions.Categorical(logits=out)
        std = self.effective_log_std().exp().expand_as(out)
        return torch.distributions.Independent(torch.distributions.Normal(out, std), 1)

    # The three below equal ``distribution(out)``'s, written out because the PPO update calls
    # them on hundreds of thousands of rows: no validation, no per-sample softmax copies.
    def sample(self, out: torch.Tensor) -> torch.Tensor:
        """One action per row (global torch RNG)."""
        with torch.no_grad():
            if self.spec.discrete:  # inverse CDF: a fraction of torch.multinomial's cost
                cdf = F.softmax(out, dim=-1).cumsum(dim=-1)
                return (cdf[:, :-1] < torch.rand(out.shape[0], 1)).sum(dim=-1)
            return torch.normal(out, self.effective_log_std().exp().expand_as(out))

    def log_prob(self, out: torch.Tensor, actions: torch.Tensor,
                 index: torch.Tensor | None = None, frozen: bool = False) -> torch.Tensor:
        """log pi(a | s) per sample. ``out`` may hold one row per *distinct* state with
        ``index`` mapping samples to rows (see ``rows.Rows``): the softmax then runs once
        per distinct state. ``frozen`` detaches the shared log-std (student-side losses)."""
        # index_select, not indexing: its backward is several times faster.
        if self.spec.discrete:
            log_p = F.log_softmax(out, dim=-1)
            rows = torch.arange(len(out)) if index is None else index
            return log_p.reshape(-1).index_select(0, rows * self.spec.n + actions)
        mean = out if index is None else out.index_select(0, index)
        log_std = self.effective_log_std()
        log_std = log_std.detach() if frozen else log_std
        z = (actions - mean) / log_std.exp()
        return (-0.5 * z.pow(2) - log_std - 0.5 * math.log(2.0 * math.pi)).sum(dim=-1)

    def entropy(self, out: torch.Tensor, frozen: bool = False) -> torch.Tensor:
        """Entropy per row (``frozen``: the shared log-std detached)."""
        if self.spec.discrete:
            log_p = F.log_softmax(out, dim=-1)
            return -(log_p.exp() * log_p).sum(dim=-1)
        log_std = self.effective_log_std()
        log_std = log_std.detach() if frozen else log_std
        per_dim = 0.5 + 0.5 * math.log(2.0 * math.pi) + log_std
        return per_dim.sum().expand(out.shape[0])

    def deterministic(self, out: torch.Tensor) -> torch.Tensor:
        return out.argmax(dim=-1) if self.spec.discrete else out

    def kl(self, out_p: torch.Tensor, out_q: torch.Tensor, frozen: bool = False) -> torch.Tensor:
        """KL(p || q) per sample, for two decoder outputs.

        Discrete: the categorical KL. Continuous: Gaussians with the shared covariance,
        ``0.5 * sum_i (mu_p,i - mu_q,i)^2 / sigma_i^2``; the gradient through sigma raises
        the std where the means disagree (METHODS.md section 1). ``frozen`` detaches the
        shared log-std, for the student-side losses that must not move the decoder."""
        if self.spec.discrete:
            log_p = F.log_softmax(out_p, dim=-1)
            log_q = F.log_softmax(out_q, dim=-1)
            return (log_p.exp() * (log_p - log_q)).sum(dim=-1)
        log_std = self.effective_log_std()
        log_std = log_std.detach() if frozen else log_std
        var = (2.0 * log_std).exp()
        return 0.5 * ((out_p - out_q).pow(2) / var).sum(dim=-1)


class TeacherStudentPolicy(nn.Module):
    """All networks of a run, in one module so a checkpoint is one state dict."""

    def __init__(
        self,
        teacher_dim: int,
        student: int | Callable[[], nn.Module],
        action_spec: ActionSpec,
        feature_dim: int = 32,
        hidden: Sequence[int] = (64, 64),
        critic_hidden: Sequence[int] = (64, 64),
        init_log_std: float = 0.0,
        normalize_obs: bool = False,
        min_log_std: float | None = None,
        decoder_hidden: Sequence[int] = (),
        unit_features: bool = False,
        detach_teacher_features: bool = False,
        student_critic: bool = False,
    ) -> None:
        """``unit_features`` puts E_T's and E_S's outputs on the unit sphere and
        ``detach_teacher_features`` keeps the teacher's RL loss out of E_T (TSRA: the
        encoders are trained by the alignment losses only). ``student_critic`` adds
        V_S(o_T), a privileged critic of the *student's* returns (HLRL's student RL)."""
        super().__init__()
        self.feature_dim = feature_dim
        # One running normaliser of o_T, shared by E_T, E_P and V (they read the same input).
        self.teacher_norm = RunningNorm(teacher_dim) if normalize_obs else nn.Identity()
        self.teacher_encoder = mlp(teacher_dim, hidden, feature_dim)
        # An int is the width of a vector observation; camera tasks pass a factory of their
        # encoder (built here, in this order, so a seed gives the same initial weights).
        self.student_encoder = (mlp(student, hidden, feature_dim) if isinstance(student, int)
                                else student())
        if unit_features:  # inside the encoders, so the exported student includes it
            self.teacher_encoder = nn.Sequential(self.teacher_encoder, UnitNorm())
            self.student_encoder = nn.Sequential(self.student_encoder, UnitNorm())
        self.detach_teacher_features = detach_teacher_features
        self.proxy_encoder = mlp(teacher_dim, hidden, feature_dim)
        self.decoder = ActionDecoder(feature_dim, action_spec, init_log_std, min_log_std,
                                     decoder_hidden)
        self.critic = mlp(teacher_dim, critic_hidden, 1)
        # Built last, and only when asked: the other networks' initial weights stay those of
        # every other method for the same seed. Not a teacher parameter: PPO never moves it.
        self.student_critic = mlp(teacher_dim, critic_hidden, 1) if student_critic else None
        # Whether any observation normaliser is in use (``network.normalize_obs``).
        self.normalizes = any(isinstance(m, RunningNorm) for m in self.modules())

    # Parameter groups, one per optimiser: who may move what is decided here.
    def teacher_parameters(self) -> list[nn.Parameter]:
        """Everything the teacher's RL loss moves: E_T (unless detached), D (with log-std)
        and V."""
        encoder = [] if self.detach_teacher_features else [*self.teacher_encoder.parameters()]
        return [*encoder, *self.decoder.parameters(), *self.critic.parameters()]

    def teacher_features(self, obs_t: torch.Tensor) -> torch.Tensor:
        return self.teacher_encoder(self.teacher_norm(obs_t))

    def proxy_features(self, obs_t: torch.Tensor) -> torch.Tensor:
        return self.proxy_encoder(self.teacher_norm(obs_t))

    def update_normalizers(self, obs_t: torch.Tensor, obs_s: Any | None = None) -> None:
        """Fold roll-out observations into the running normalisers (if any)."""
        if isinstance(self.teacher_norm, RunningNorm):
            self.teacher_norm.update(obs_t)
        if obs_s is not None:
            self.update_student_normalizers(obs_s)

    def update_student_normalizers(self, obs_s: Any) -> None:
        """Fold student observations into the student encoder's running normaliser (if any)."""
        for module in self.student_encoder.modules():
            if isinstance(module, RunningNorm):
                module.update(obs_s["state"] if isinstance(obs_s, dict) else obs_s)

    def teacher_out(self, obs_t: torch.Tensor) -> torch.Tensor:
        z = self.teacher_features(obs_t)
        return self.decoder(z.detach() if self.detach_teacher_features else z)

    def student_out(self, obs_s: torch.Tensor | dict[str, torch.Tensor]) -> torch.Tensor:
        return self.decoder(self.student_encoder(obs_s))

    def proxy_out(self, obs_t: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.proxy_features(obs_t))

    def value(self, obs_t: torch.Tensor) -> torch.Tensor:
        return self.critic(self.teacher_norm(obs_t)).squeeze(-1)

    def student_value(self, obs_t: torch.Tensor) -> torch.Tensor:
        """V_S(o_T): the student critic's value (only with ``student_critic``)."""
        if self.student_critic is None:
            raise RuntimeError("this policy has no student critic (network option "
                               "student_critic)")
        return self.student_critic(self.teacher_norm(obs_t)).squeeze(-1)
