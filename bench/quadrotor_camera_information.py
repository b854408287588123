"""How much does the camera tell the student, by camera-velocity angle? Fresh students
trained offline on the same teacher flights, one with its images, one with a blank frame
and one with the teacher's own observation, and their held-out KL to the teacher per
angle bin.

    python bench/quadrotor_camera_information.py RUN --checkpoint RUN/model_300.pt

Why: SITT's penalty can only steer the teacher toward looking where it flies if a student
imitates the teacher better when it does (``quadrotor_kl_by_angle.py`` measures that for
the run's own student). A run's student is trained on a small rendering subset while the
teacher changes, so a flat KL could mean either that the images carry little the state
does not, or that the student has not learnt to read them. This probe separates the two:
with the teacher fixed and many passes over its flights, the gap between the blank-frame
student and the camera student is what the images are worth, angle by angle, and the
privileged student (pillar positions given) shows how much there was to gain. Caveat: it
measures the per-step KL (what SITT penalises), not success in flight; a student that
does use its camera in flight can still be no closer per step than a blind one
(docs/quadrotor_tuning.md, session 13: the positive control).

Data: the run's teacher flies ``--episodes`` layouts of a training seed and
``--test-episodes`` held-out test layouts (``TEST_SEED``) with its actions sampled as in
training (``--actions deterministic``: its mean actions; the observed previous action is
then the teacher's own last mean, which a student can simply copy);
every ``--stride``-th step of each live episode is kept (the image, the student state, the
teacher observation, the angle and whether a pillar is within ``--near`` m). Students: the
run's student (and proxy, for the privileged one) architecture from a fixed fresh
initialisation, trained by the run's own alignment loss (``alignment_loss``) with Adam at
``method.align_lr`` for ``--epochs`` passes; the blank student gets one uniform frame (the
training images' mean colour) in place of every image. Prints the held-out KL per epoch,
then per angle bin.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch
from quadrotor_kl_by_angle import (
    add_flight_arguments,
    binned_table,
    check_flight_arguments,
    print_table,
    step_geometry,
    teacher_actions,
)
from tqdm import tqdm

from sitt_training.cli import build_run_policy, load_run
from sitt_training.envs import make_task
from sitt_training.evaluation import TEST_SEED
from sitt_training.methods.noalign import alignment_loss
from sitt_training.networks import TeacherStudentPolicy

TRAIN_LAYOUT_SEED = 7  # a training seed (< MAX_TRAIN_SEED), disjoint from TEST_SEED
# The probe students: the camera student; the same network with a blank frame in place of
# every image (what the state alone gives); an MLP on the teacher's own observation, pillar
# positions included (what full information gives, the floor for the other two).
STUDENTS = ("camera", "blank", "privileged")


def teacher_flights(run_dir: Path, checkpoint: str | None, episodes: int, seed: int,
                    stride: int, near: float, actions: str = "sampled"
                    ) -> tuple[TeacherStudentPolicy, dict[str, np.ndarray]]:
    """The run's policy and the kept steps of its teacher's flights (``actions``: see
    ``ACTIONS``) on ``episodes`` layouts of ``seed``: ``image``, ``state``, ``teacher``,
    ``angle``, ``near``."""
    cfg, policy, _ = load_run(run_dir, None if checkpoint is None else Path(checkpoint))
    if cfg.task.name != "quadrotor":
        raise ValueError(f"{run_dir}: task {cfg.task.name!r} is not the quadrotor")
    env = make_task(cfg.task.name, num_envs=episodes, seed=seed, **cfg.task.kwargs)
    obs, _ = env.reset(seed=seed)
    torch.manual_seed(seed)  # the sampled actions
    finished = np.zeros(episodes, dtype=bool)
    kept: dict[str, list[np.ndarray]] = {k: [] for k in
                                         ("image", "state", "teacher", "angle", "near")}
    step = 0
    with torch.no_grad(), tqdm(total=episodes, desc=f"teacher flights (seed {seed})",
                               unit="ep") as bar:
        while not finished.all():
            if step % stride == 0:  # render only the kept steps of live episodes
                env.set_student_mask(~finished)
                obs = env.observe()
                live = np.flatnonzero(~finished)
                kept["image"].append(obs["student"]["image"][live])
                kept["state"].append(obs["student"]["state"][live])
                kept["teacher"].append(obs["teacher"][live])
                angle, close = step_geometry(env, near)
                kept["angle"].append(angle[live])
                kept["near"].append(close[live])
                env.set_student_mask(np.zeros(episodes, dtype=bool))
            out = policy.teacher_out(torch.from_numpy(obs["teacher"]))
            obs, _, _, _, infos = env.step(teacher_actions(policy, out, actions))
            ended = infos.get("_episode", np.zeros(episodes, dtype=bool)) & ~finished
            finished |= ended
            bar.update(int(ended.sum()))
            step += 1
    env.close()
    return policy, {k: np.concatenate(v) for k, v in kept.items()}


def fresh_student(run_dir: Path, trained: TeacherStudentPolicy, seed: int
                  ) -> TeacherStudentPolicy:
    """The run's networks with ``trained``'s teacher and decoder, and the student and proxy
    encoders from a fresh initialisation (``seed``)."""
    cfg, _, _ = load_run(run_dir, None)
    env = make_task(cfg.task.name, 1, 0, **cfg.task.kwargs)
    torch.manual_seed(seed)
    policy = build_run_policy(cfg, env)
    env.close()
    keep = {k: v for k, v in trained.state_dict().items()
            if not k.startswith(("student_encoder.", "proxy_encoder."))}
    policy.load_state_dict(keep, strict=False)
    policy.eval()
    return policy


def probe_features(policy: TeacherStudentPolicy, name: str, data: dict[str, np.ndarray],
                   rows: slice | np.ndarray, blank: np.ndarray) -> torch.Tensor:
    """The features of probe student ``name`` (STUDENTS) for ``rows`` of ``data``: the
    camera student on its images, the blank one on ``blank`` in place of every image, the
    privileged one (the proxy encoder's network) on the teacher's own observation."""
    if name == "privileged":
        return policy.proxy_features(torch.from_numpy(data["teacher"][rows]))
    state = torch.from_numpy(data["state"][rows])
    if name == "camera":
        frames = torch.from_numpy(data["image"][rows])
    else:
        frames = torch.from_numpy(blank).expand(len(state), *blank.shape)
    return policy.student_encoder({"image": frames, "state": state})


def held_out_kl(policy: TeacherStudentPolicy, name: str, data: dict[str, np.ndarray],
                blank: np.ndarray, batch: int = 1024) -> np.ndarray:
    """KL(teacher || probe student ``name``) per step of ``data``."""
    kls = []
    with torch.no_grad():
        for lo in range(0, len(data["state"]), batch):
            rows = slice(lo, lo + batch)
            teacher = policy.teacher_out(torch.from_numpy(data["teacher"][rows]))
            student = policy.decoder(probe_features(policy, name, data, rows, blank))
            kls.append(policy.decoder.kl(teacher, student).numpy())
    return np.concatenate(kls)


def blank_frame(images: np.ndarray) -> np.ndarray:
    """One frame of the images' mean colour."""
    colour = np.round(images.reshape(-1, images.shape[-1]).mean(axis=0)).astype(np.uint8)
    return np.broadcast_to(colour, images.shape[1:]).copy()


def train_students(run_dir: Path, trained: TeacherStudentPolicy, lr: float,
                   train: dict[str, np.ndarray], test: dict[str, np.ndarray],
                   epochs: int, batch: int, seed: int,
                   students: tuple[str, ...] = STUDENTS) -> dict[str, np.ndarray]:
    """Train each probe student (same initialisation and batches); the held-out KL per step
    of each."""
    blank = blank_frame(train["image"])
    kl: dict[str, np.ndarray] = {}
    for name in students:
        policy = fresh_student(run_dir, trained, seed)
        policy.update_student_normalizers({"state": torch.from_numpy(train["state"])})
        encoder = policy.proxy_encoder if name == "privileged" else policy.student_encoder
        optimizer = torch.optim.Adam(encoder.parameters(), lr=lr)
        generator = torch.Generator().manual_seed(seed)
        weights = torch.full((batch,), 1.0 / batch)
        batches = len(train["state"]) // batch
        bar = tqdm(total=epochs * batches, desc=f"{name} student", unit="batch",
                   mininterval=2.0)
        for epoch in range(1, epochs + 1):
            order = torch.randperm(len(train["state"]), generator=generator).numpy()
            for lo in range(0, batches * batch, batch):
                rows = np.sort(order[lo:lo + batch])
                z = probe_features(policy, name, train, rows, blank)
                loss = alignment_loss(policy, z, torch.from_numpy(train["teacher"][rows]),
                                      weights)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                bar.update()
            kl[name] = held_out_kl(policy, name, test, blank)
            bar.write(f"{name} student, epoch {epoch}: held-out KL {kl[name].mean():.4f}")
        bar.close()
    return kl


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", type=Path, help="quadrotor run directory")
    parser.add_argument("--checkpoint", default="best",
                        help="'best' (validation-best, default) or a model_<iter>.pt path")
    parser.add_argument("--episodes", type=int, default=64, help="training flights")
    parser.add_argument("--test-episodes", type=int, default=32, help="held-out flights")
    parser.add_argument("--stride", type=int, default=2, help="keep every N-th step")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--seed", type=int, default=0, help="student initialisation")
    parser.add_argument("--students", nargs="+", choices=STUDENTS, default=list(STUDENTS),
                        help="which probe students to train (default: all)")
    add_flight_arguments(parser)
    args = parser.parse_args(argv)
    for name in ("episodes", "test_episodes", "stride", "epochs", "batch"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    check_flight_arguments(parser, args)
    torch.set_num_threads(1)
    try:
        policy, train = teacher_flights(args.run, args.checkpoint, args.episodes,
                                        TRAIN_LAYOUT_SEED, args.stride, args.near,
                                        args.actions)
        _, test = teacher_flights(args.run, args.checkpoint, args.test_episodes, TEST_SEED,
                                  args.stride, args.near, args.actions)
        cfg, _, _ = load_run(args.run, None)
    except (FileNotFoundError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if len(train["state"]) < args.batch:
        parser.error(f"{len(train['state'])} training steps, fewer than --batch {args.batch}")
    kl = train_students(args.run, policy, cfg.method.align_lr, train, test, args.epochs,
                        args.batch, args.seed, tuple(args.students))
    samples = {"angle": test["angle"], "near": test["near"],
               **{f"kl_{name}": kl[name] for name in args.students}}
    headers = {f"kl_{name}": f"KL, {name} student" for name in args.students}
    if {"camera", "blank"} <= set(args.students):
        samples["gain"] = samples["kl_blank"] - samples["kl_camera"]
        headers["gain"] = "blank - camera"
    rows = binned_table(samples, tuple(headers))
    print(f"\n{args.run} ({args.checkpoint}): {len(train['state'])} training steps "
          f"({args.episodes} flights), {len(test['state'])} held-out steps "
          f"({args.test_episodes} test flights), {args.actions} teacher actions, "
          f"{args.epochs} epochs; 'near': a pillar "
          f"within {args.near:g} m")
    print_table(rows, headers)
    if args.json:
        args.json.write_text(json.dumps({
            "run": str(args.run), "checkpoint": args.checkpoint, "episodes": args.episodes,
            "test_episodes": args.test_episodes, "stride": args.stride,
            "epochs": args.epochs, "batch": args.batch, "near_m": args.near,
            "actions": args.actions,
            "mean_kl": {name: float(kl[name].mean()) for name in args.students},
            "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
