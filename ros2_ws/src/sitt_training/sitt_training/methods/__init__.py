"""One module per method, all on the shared PPO core (see ``base.py`` for the hooks)."""

from __future__ import annotations

from ..config import MethodConfig, PPOConfig
from ..networks import TeacherStudentPolicy
from .base import Method
from .bc import BC
from .dagger import DAgger
from .dwbc import DWBC
from .hlrl import HLRL
from .noalign import NoAlign
from .sitt import SITT
from .tsra import TSRA

METHOD_CLASSES: dict[str, type[Method]] = {
    "sitt": SITT,
    "noalign": NoAlign,
    "bc": BC,
    "dagger": DAgger,
    "tsra": TSRA,
    "hlrl": HLRL,
    "dwbc": DWBC,
}


def make_method(policy: TeacherStudentPolicy, cfg: MethodConfig,
                ppo: PPOConfig | None = None) -> Method:
    return METHOD_CLASSES[cfg.name](policy, cfg, ppo)


__all__ = ["METHOD_CLASSES", "Method", "make_method"]
