"""Command-line entry points: ``sitt-train`` and ``sitt-eval``."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import torch

from .config import METHODS, OFF_POLICY_METHODS, Config, ConfigError, load_config, preset_path
from .envs import TASKS
from .evaluation import TEST_SEED, evaluate
from .methods.cosil import build_cosil_policy
from .methods.l2t import build_l2t_policy
from .offpolicy_trainer import COSILTrainer, OffPolicyTrainer
from .trainer import BEST_MODEL, Trainer, build_policy, checkpoints


def _fail(message: str) -> None:
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(2)


# ------------------------------------------------------------------- sitt-train
def train_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sitt-train",
        description="Train a teacher and its student with SITT or a baseline.",
        epilog="Example: sitt-train --task color_maze --method sitt --seed 0 "
               "--set ppo.lr=0.003 --set train.iterations=60",
    )
    parser.add_argument("--task", choices=sorted(TASKS), help="task (default: color_maze)")
    parser.add_argument("--method", choices=METHODS, help="method (default: sitt)")
    parser.add_argument("--seed", type=int, help="training seed (default: the config's)")
    parser.add_argument("--config", type=Path,
                        help="YAML config (default: the shipped preset for task x method)")
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        metavar="SECTION.KEY=VALUE", help="override a config value (repeatable)")
    parser.add_argument("--out", type=Path,
                        help="run directory (default: runs/<task>_<method>_s<seed>_<time>)")
    parser.add_argument("--resume", type=Path, metavar="RUN_DIR",
                        help="continue an interrupted run from its newest checkpoint")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser


def resolve_train_config(args: argparse.Namespace) -> Config:
    """Preset (or --config), then --task/--method/--seed, then --set overrides."""
    task = args.task or "color_maze"
    method = args.method or "sitt"
    path = args.config
    if path is None and preset_path(task, method).is_file():
        path = preset_path(task, method)
    overrides = []
    if args.task or path is None:  # without a file, the names must come from here
        overrides.append(f"task.name={task}")
    if args.method or path is None:
        overrides.append(f"method.name={method}")
    if args.seed is not None:
        overrides.append(f"train.seed={args.seed}")
    return load_config(path, overrides + args.overrides)


def make_trainer(cfg: Config, run_dir: Path, show_progress: bool = True
                 ) -> Trainer | OffPolicyTrainer:
    """The PPO trainer, or an off-policy one (SAC core) for ``l2t`` and ``cosil``; all
    keep the same run directory."""
    if cfg.method.name == "cosil":
        return COSILTrainer(cfg, run_dir, show_progress=show_progress)
    if cfg.method.name in OFF_POLICY_METHODS:
        return OffPolicyTrainer(cfg, run_dir, show_progress=show_progress)
    return Trainer(cfg, run_dir, show_progress=show_progress)


def build_run_policy(cfg: Config, env: Any) -> torch.nn.Module:
    """The networks of a run's method (evaluation and ``load_run``)."""
    if cfg.method.name == "cosil":
        return build_cosil_policy(cfg, env)
    if cfg.method.name in OFF_POLICY_METHODS:
        return build_l2t_policy(cfg, env)
    return build_policy(cfg, env)


def train_main(argv: list[str] | None = None) -> int:
    args = train_parser().parse_args(argv)
    try:
        if args.resume:
            run_dir = args.resume
            if not (run_dir / "config.yaml").is_file():
                _fail(f"--resume {run_dir}: no config.yaml there; is it a run directory?")
            if args.task or args.method or args.config or args.seed is not None:
                _fail("--resume continues a run with its own config; drop "
                      "--task/--method/--config/--seed (use --set to change e.g. iterations)")
            cfg = load_config(run_dir / "config.yaml", args.overrides)
        else:
            cfg = resolve_train_config(args)
            stamp = time.strftime("%Y%m%d-%H%M%S")
            run_dir = args.out or Path("runs") / (
                f"{cfg.task.name}_{cfg.method.name}_s{cfg.train.seed}_{stamp}")
            if args.out and checkpoints(run_dir):
                _fail(f"--out {run_dir} already holds checkpoints; use --resume {run_dir}")
        trainer = make_trainer(cfg, run_dir, show_progress=not args.no_progress)
        if args.resume:
            found = trainer.resume()
            print(f"resuming {run_dir} from {found.name if found else 'the start'} "
                  f"(iteration {trainer.iteration})")
    except (ConfigError, FileNotFoundError, ValueError) as err:
        _fail(str(err))
    print(f"run directory: {run_dir}")
    try:
        result = trainer.train()
    except KeyboardInterrupt:  # a second Ctrl-C / SIGTERM: stopped at once, nothing saved
        found = checkpoints(run_dir)
        last = f"the last checkpoint is {found[-1].name}" if found else "no checkpoint yet"
        print(f"stopped at once at iteration {trainer.iteration} ({last}); continue with: "
              f"sitt-train --resume {run_dir}", file=sys.stderr)
        return 130
    print(json.dumps({k: result[k] for k in ("status", "iteration", "env_steps", "wall_time")}))
    if result["status"] == "interrupted":
        print(f"interrupted; continue with: sitt-train --resume {run_dir}")
        return 130
    return 0


# -------------------------------------------------------------------- sitt-eval
def load_run(run_dir: Path, checkpoint: Path | None = None
             ) -> tuple[Config, torch.nn.Module, dict[str, Any]]:
    """Config, networks and checkpoint metadata of a run directory."""
    if not run_dir.is_dir():
        raise FileNotFoundError(f"run directory not found: {run_dir}")
    if not (run_dir / "config.yaml").is_file():
        raise FileNotFoundError(f"{run_dir}: no config.yaml; is it a run directory?")
    cfg = load_config(run_dir / "config.yaml")
    if checkpoint is not None and str(checkpoint) == "best":
        checkpoint = run_dir / BEST_MODEL
        if not checkpoint.is_file():
            raise FileNotFoundError(f"{run_dir}: no {BEST_MODEL} (written at the first "
                                    "validation when train.keep_best is on)")
    path = checkpoint or (checkpoints(run_dir) or [None])[-1]
    if path is None:
        raise FileNotFoundError(f"{run_dir}: no model_<iter>.pt checkpoint yet")
    if not Path(path).is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    state = torch.load(path, weights_only=False)
    from .envs import make_task

    env = make_task(cfg.task.name, 1, 0, **cfg.task.kwargs)
    policy = build_run_policy(cfg, env)
    policy.load_state_dict(state["policy"])
    policy.eval()
    meta = {"checkpoint": str(path), "iteration": state["iteration"],
            "env_steps": state["env_steps"], "student_samples": state["student_samples"],
            "wall_time": state["wall_time"]}
    return cfg, policy, meta


def evaluate_run(run_dir: Path, episodes: int, seed: int = TEST_SEED,
                 checkpoint: Path | None = None, plot: Path | None = None) -> dict[str, Any]:
    """Teacher and student success on held-out seeds, and the imitation gap."""
    cfg, policy, meta = load_run(run_dir, checkpoint)
    results = {role: evaluate(policy, cfg.task.name, cfg.task.kwargs, role, episodes, seed,
                              record_traces=plot is not None)
               for role in ("teacher", "student")}
    report = {
        "run_dir": str(run_dir), "task": cfg.task.name, "method": cfg.method.name,
        "seed": cfg.train.seed, "eval_seed": seed, **meta,
        "teacher": results["teacher"].summary(), "student": results["student"].summary(),
        "teacher_success": results["teacher"].success,
        "student_success": results["student"].success,
        "gap": results["teacher"].success - results["student"].success,
    }
    if plot is not None:
        from .plots import plot_maze_trajectories, plot_quadrotor_trajectories

        title = f"{cfg.method.name} (seed {cfg.train.seed})"
        if cfg.task.name == "color_maze":
            plot_maze_trajectories(results["teacher"], results["student"], cfg, seed, plot,
                                   title=title)
        else:
            plot_quadrotor_trajectories(results["teacher"], results["student"], plot, title)
        report["plot"] = str(plot)
    return report


def eval_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sitt-eval",
        description="Evaluate a run's teacher and student (deterministic actions) on "
                    "evaluation seeds never used in training.")
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--episodes", type=int, default=1000)
    parser.add_argument("--checkpoint", type=Path, help="default: the newest "
                        "model_<iter>.pt; 'best': the validation-best networks (best_model.pt)")
    parser.add_argument("--seed", type=int, default=TEST_SEED, help="evaluation seed")
    parser.add_argument("--plot", type=Path, help="save a trajectory figure (PNG) here")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    return parser


def eval_main(argv: list[str] | None = None) -> int:
    args = eval_parser().parse_args(argv)
    if args.episodes < 1:
        _fail(f"--episodes must be >= 1, got {args.episodes}")
    try:
        report = evaluate_run(args.run_dir, args.episodes, args.seed, args.checkpoint, args.plot)
    except (ConfigError, FileNotFoundError, ValueError) as err:
        _fail(str(err))
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(f"{report['task']} / {report['method']} (seed {report['seed']}, "
              f"{report['checkpoint']}): {args.episodes} episodes on eval seed {args.seed}")
        print(f"  teacher success {report['teacher_success']:.3f}")
        print(f"  student success {report['student_success']:.3f}")
        print(f"  gap             {report['gap']:.3f}")
        if report["teacher_success"] != report["teacher_success"]:  # NaN: no success defined
            print(f"  teacher return  {report['teacher']['return']:.1f}")
            print(f"  student return  {report['student']['return']:.1f}")
        standard = {"episodes", "success", "return", "length"}
        for key in report["teacher"]:
            if key not in standard:  # the task's own metrics, e.g. perception
                print(f"  {key:<20} teacher {report['teacher'][key]:.3f}  "
                      f"student {report['student'][key]:.3f}")
        if args.plot:
            print(f"  figure: {report['plot']}")
    return 0
