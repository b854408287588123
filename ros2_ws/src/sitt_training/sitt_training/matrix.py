"""``sitt-bench``: the benchmark matrix, tasks x methods x seeds, on local processes or Ray.

    sitt-bench --tasks tunnel_vision                        # every preset method, seeds 0-4
    sitt-bench --tasks tunnel_vision --methods sitt bc --seeds 0 1 --episodes 500
    sitt-bench --tasks tunnel_vision --ray local            # a local Ray instance (loopback)
    sitt-bench --ray 10.0.0.5:6379                          # the cells on a Ray cluster

A cell is one (task, method, seed): the shipped preset trained into
``OUT/<task>/<method>_s<seed>`` (resumed when interrupted, only read back when finished),
then its teacher and student evaluated on the test seeds (cached in the run directory as
``test_<episodes>[_best].json``). Every cell returns a plain row; the driver appends each
finished (or finally failed) cell to ``OUT/cells.jsonl`` as it arrives, so an interrupted
benchmark loses nothing and a rerun skips the cells that are there (with the same
evaluation settings and the same resolved config: a changed preset is trained again).
A cell that raises is tried again up to ``--retries`` times, then reported as FAILED (exit
status 1). With ``--record DIR`` the finished rows are also kept in ``DIR/cells.jsonl`` (in
git), so a benchmark longer than one machine's life goes on where it stopped;
``--recorded-only --write-docs`` writes the docs from what has finished.

On Ray every machine needs this package installed; workers write the run directories under
the driver's absolute ``--out`` path on their own machine (a shared file system makes them
resumable from any node). Everything the driver reports comes from the returned rows.
"""

from __future__ import annotations

import argparse
import importlib
import json
import math
import multiprocessing
import os
import platform
import secrets
import shlex
import shutil
import signal
import socket
import sys
import tempfile
import time
import traceback
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from multiprocessing.connection import wait as wait_for_connections
from pathlib import Path
from typing import Any, ClassVar, Protocol

import numpy as np
import torch
from tqdm import tqdm

from . import bench_record
from .cli import evaluate_run, make_trainer
from .config import METHODS, ConfigError, load_config, preset_path, resolved_config
from .envs import TASKS
from .plots import plot_learning_curves, plt, read_metrics  # plt: pyplot on Agg
from .results_doc import copy_figures, replace_section
from .trainer import checkpoints

CELLS_FILE = "cells.jsonl"
VALIDATION_KEY = "eval/teacher_success"  # in a metrics row: a validation was run
DOCS_ENV = "SITT_DOCS_DIR"  # default of --docs-dir (tests point it at a temporary folder)


class RunError(RuntimeError):
    """A run directory that cannot be used as asked."""


class PlanError(ValueError):
    """A benchmark that cannot start: no preset for a requested pair, bad arguments."""


# --------------------------------------------------------------------------- one run
def _finished_run(run_dir: Path, iterations: int) -> dict[str, Any] | None:
    """The last metrics row of a run whose newest checkpoint is the final one, else None."""
    found = checkpoints(run_dir)
    if not found or int(found[-1].stem.split("_")[1]) < iterations:
        return None
    if not (run_dir / "metrics.jsonl").is_file():
        return None
    rows = read_metrics(run_dir)
    return {"status": "finished", **rows[-1]} if rows else None


def train_one(method: str, seed: int, out: Path, overrides: Sequence[str],
              task: str = "color_maze", show_progress: bool = True) -> dict[str, Any]:
    """Train (or finish training) the preset run ``out/<method>_s<seed>``; a finished run
    is only read back. Refuses a run directory that holds another config."""
    run_dir = out / f"{method}_s{seed}"
    cfg = load_config(preset_path(task, method), [f"train.seed={seed}", *overrides])
    saved = run_dir / "config.yaml"
    if saved.is_file() and load_config(saved).to_dict() != cfg.to_dict():
        raise RunError(f"{run_dir} holds a run with another config; remove it or use --out")
    torch.set_num_threads(cfg.train.torch_threads)  # evaluation of a finished run too
    start = time.perf_counter()
    result = _finished_run(run_dir, cfg.train.iterations)
    if result is None:
        trainer = make_trainer(cfg, run_dir, show_progress=show_progress)
        trainer.resume()  # a benchmark interrupted half-way continues where it stopped
        result = trainer.train()
    if result["status"] != "finished":
        raise RunError(f"{run_dir}: training was interrupted; run the same command again "
                       "to continue")
    return {"run_dir": run_dir, "wall_incl_eval": time.perf_counter() - start, **result}


def evaluate_cached(run_dir: Path, episodes: int, checkpoint: str) -> dict[str, Any]:
    """``evaluate_run`` on the test seeds, cached as ``test_<episodes>[_best].json``."""
    cached = run_dir / f"test_{episodes}{'_best' if checkpoint == 'best' else ''}.json"
    if cached.is_file():
        return json.loads(cached.read_text())
    report = evaluate_run(run_dir, episodes,
                          checkpoint=Path("best") if checkpoint == "best" else None)
    tmp = cached.with_name(cached.name + ".tmp")
    tmp.write_text(json.dumps(report, indent=2))
    tmp.replace(cached)
    return report


# ---------------------------------------------------------------------------- cells
@dataclass(frozen=True)
class Cell:
    task: str
    method: str
    seed: int
    threads: int = field(default=1, compare=False)  # the run's train.torch_threads
    # The run's whole resolved config: a finished row stands for this cell only while its
    # config resolves to this one, so a changed preset is trained again.
    config: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def name(self) -> str:
        return f"{self.task}/{self.method}_s{self.seed}"


@dataclass(frozen=True)
class Settings:
    """What every cell of one benchmark shares."""

    out: Path  # absolute
    episodes: int
    checkpoint: str  # "last" or "best"
    overrides: tuple[str, ...]

    IDENTITY: ClassVar[tuple[str, ...]] = ("task", "method", "seed", "episodes", "checkpoint",
                                           "overrides")  # the keys of fields()

    def fields(self, cell: Cell) -> dict[str, Any]:
        """The identity of a cell's row in cells.jsonl (with its config)."""
        return {"task": cell.task, "method": cell.method, "seed": cell.seed,
                "episodes": self.episodes, "checkpoint": self.checkpoint,
                "overrides": list(self.overrides)}


@dataclass(frozen=True)
class Failure:
    """A cell attempt that raised: the error's last line and the whole traceback."""

    error: str
    traceback: str

    @classmethod
    def from_exception(cls, err: BaseException) -> Failure:
        cause = getattr(err, "cause", None)  # a Ray task error wraps the cell's own error
        shown = cause if isinstance(cause, BaseException) else err
        lines = [line for line in f"{type(shown).__name__}: {shown}".splitlines()
                 if line.strip()]
        if cause is not None:
            text = str(err)
        else:
            text = "".join(traceback.format_exception(err))
        return cls(lines[-1] if lines else type(shown).__name__, text)


Outcome = dict[str, Any] | Failure


def run_cell(cell: Cell, settings: Settings) -> dict[str, Any]:
    """Train (or reuse) and evaluate one cell; a plain row, learning curve included."""
    trained = train_one(cell.method, cell.seed, settings.out / cell.task,
                        settings.overrides, task=cell.task, show_progress=False)
    run_dir = trained["run_dir"]
    report = evaluate_cached(run_dir, settings.episodes, settings.checkpoint)
    metrics = read_metrics(run_dir)
    if not metrics:
        raise RunError(f"{run_dir}: checkpoints but no metrics.jsonl rows")
    last = metrics[-1]
    return {**settings.fields(cell), "config": cell.config, "status": "ok",
            "teacher_success": report["teacher_success"],
            "student_success": report["student_success"], "gap": report["gap"],
            "teacher_return": report["teacher"]["return"],
            "student_return": report["student"]["return"],
            "env_steps": last["env_steps"], "student_samples": last["student_samples"],
            "train_wall_time": last["wall_time"], "iterations": last["iteration"],
            "evaluated_iteration": report["iteration"],
            "teacher": report["teacher"], "student": report["student"],
            "run_dir": str(run_dir), "host": socket.gethostname(), "metrics": metrics}


def _cell_process(conn: Connection, cell: Cell, settings: Settings) -> None:
    """A local worker: one cell attempt, its outcome sent back through ``conn``."""
    os.setpgrp()  # Ctrl-C in a terminal reaches the driver only; it forwards one SIGINT
    try:
        outcome: Outcome = run_cell(cell, settings)
    except BaseException as err:  # KeyboardInterrupt too: reported, never lost
        outcome = Failure.from_exception(err)
    conn.send(outcome)
    conn.close()


# ------------------------------------------------------------------------- backends
class Backend(Protocol):
    def has_room(self) -> bool: ...
    def busy(self) -> bool: ...
    def submit(self, cell: Cell, settings: Settings, attempt: int) -> None: ...
    # the attempts that ended within ``timeout`` seconds (none: an empty list)
    def wait(self, timeout: float) -> list[tuple[Cell, int, Outcome]]: ...
    def running_cells(self) -> list[Cell]: ...
    def interrupt(self) -> None: ...  # ask running cells to stop (they save a checkpoint)
    def kill(self) -> None: ...  # stop them at once
    def close(self) -> None: ...


class LocalBackend:
    """Each cell attempt in its own process, forked from the driver: it has imported
    everything a cell needs, has run no torch operation and runs no Python thread (tqdm's
    monitor thread is turned off), so a fork costs no imports and inherits no held lock.
    Elsewhere than on Linux, a fork server that imports this module once."""

    # What every cell imports lazily, seconds each (Adam's first construction imports
    # torch._dynamo, the trainer tensorboard's writer): imported once, before forking.
    PRELOAD = (__name__, "torch._dynamo", "torch.utils.tensorboard")

    def __init__(self, workers: int) -> None:
        self.workers = workers
        tqdm.monitor_interval = 0
        if sys.platform == "linux":
            for module in self.PRELOAD:
                importlib.import_module(module)
            self.context = multiprocessing.get_context("fork")
        else:
            self.context = multiprocessing.get_context("forkserver")
            self.context.set_forkserver_preload(list(self.PRELOAD))
        self.running: dict[Connection, tuple[multiprocessing.process.BaseProcess, Cell, int]] = {}

    def has_room(self) -> bool:
        return len(self.running) < self.workers

    def busy(self) -> bool:
        return bool(self.running)

    def submit(self, cell: Cell, settings: Settings, attempt: int) -> None:
        reader, writer = self.context.Pipe(duplex=False)
        process = self.context.Process(target=_cell_process, args=(writer, cell, settings),
                                       name=f"sitt-bench {cell.name}")
        process.start()
        writer.close()  # the child's copy is the only one: EOF when it dies
        self.running[reader] = (process, cell, attempt)

    def wait(self, timeout: float) -> list[tuple[Cell, int, Outcome]]:
        done = []
        for reader in wait_for_connections(list(self.running), timeout):
            process, cell, attempt = self.running.pop(reader)
            try:
                outcome: Outcome = reader.recv()
            except EOFError:  # died without a word: killed, out of memory, a crash
                process.join()
                outcome = Failure(f"worker process exited with code {process.exitcode} "
                                  "before reporting", "")
            reader.close()
            process.join()
            done.append((cell, attempt, outcome))
        return done

    def running_cells(self) -> list[Cell]:
        return [cell for _, cell, _ in self.running.values()]

    def _signal_all(self, signum: int) -> None:
        for process, _, _ in self.running.values():
            if process.pid is not None and process.is_alive():
                os.kill(process.pid, signum)

    def interrupt(self) -> None:
        self._signal_all(signal.SIGINT)

    def kill(self) -> None:
        self._signal_all(signal.SIGTERM)  # a trainer's second signal: stops at once
        deadline = time.monotonic() + 10.0
        for process, _, _ in self.running.values():
            process.join(max(deadline - time.monotonic(), 0.0))
            if process.is_alive():
                process.kill()
                process.join()
        for reader in self.running:
            reader.close()
        self.running.clear()

    def close(self) -> None:
        if self.running:
            self.kill()


def _loopback_ray_env() -> None:
    """Environment for a local Ray instance on 127.0.0.1 only; read when ray is imported.

    Ray resolves 127.0.0.1 as a node address to the machine's outside address (so other
    nodes could join) unless its "no cluster" switch is off, which makes the node address,
    and every server bound to it, loopback. Token authentication stays on, with a token
    that lives in this process's environment only (inherited by Ray's processes) instead
    of ~/.ray/auth_token."""
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    if "RAY_AUTH_MODE" not in os.environ:
        os.environ["RAY_AUTH_MODE"] = "token"
        os.environ["RAY_AUTH_TOKEN"] = secrets.token_hex(32)


class RayBackend:
    """Each cell attempt a Ray task; retries are this driver's, as for local processes."""

    def __init__(self, address: str, workers: int | None) -> None:
        self.temp_dir: str | None = None
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        if address == "local":
            _loopback_ray_env()
        import ray  # only with --ray: the local benchmark does not need it

        self.ray = ray
        try:
            if address == "local":
                self._start_local(workers)
            else:
                context = ray.init(address=address, log_to_driver=False)
                print(f"Ray: connected to {context.address_info['gcs_address']}", flush=True)
        except BaseException:
            self.close()
            raise
        self.limit = workers  # cells in flight; None: all, Ray schedules them by CPUs
        self.task = ray.remote(run_cell)
        self.running: dict[Any, tuple[Cell, int]] = {}

    def _start_local(self, workers: int | None) -> None:
        # A short path: Ray's Unix sockets live below it (107 characters at most).
        self.temp_dir = tempfile.mkdtemp(prefix="sitt_ray_", dir="/tmp")
        context = self.ray.init(num_cpus=workers or os.cpu_count(), include_dashboard=False,
                                log_to_driver=False, _temp_dir=self.temp_dir)
        node_ip = context.address_info["node_ip_address"]
        if node_ip not in ("127.0.0.1", "::1"):
            raise RuntimeError(f"the local Ray instance is on {node_ip}, not on loopback")
        print(f"Ray: a local instance on {node_ip} only (dashboard off, usage stats off, "
              f"temp dir {self.temp_dir})", flush=True)

    def has_room(self) -> bool:
        return self.limit is None or len(self.running) < self.limit

    def busy(self) -> bool:
        return bool(self.running)

    def submit(self, cell: Cell, settings: Settings, attempt: int) -> None:
        ref = self.task.options(num_cpus=cell.threads, max_retries=0, retry_exceptions=False,
                                name=f"sitt-bench {cell.name}").remote(cell, settings)
        self.running[ref] = (cell, attempt)

    def wait(self, timeout: float) -> list[tuple[Cell, int, Outcome]]:
        ready: list[Any] = []
        deadline = time.monotonic() + timeout
        while not ready and time.monotonic() < deadline:  # short waits: Ctrl-C is seen
            ready, _ = self.ray.wait(list(self.running), num_returns=1,
                                     timeout=min(1.0, max(deadline - time.monotonic(), 0.0)))
        done = []
        for ref in ready:
            cell, attempt = self.running.pop(ref)
            try:
                outcome: Outcome = self.ray.get(ref)
            except Exception as err:  # the cell's error, a crashed worker, a lost node
                outcome = Failure.from_exception(err)
            done.append((cell, attempt, outcome))
        return done

    def running_cells(self) -> list[Cell]:
        return [cell for cell, _ in self.running.values()]

    def interrupt(self) -> None:
        for ref in self.running:  # a KeyboardInterrupt in the task: the trainer saves
            self.ray.cancel(ref, force=False)

    def kill(self) -> None:
        for ref in self.running:
            self.ray.cancel(ref, force=True)
        self.running.clear()

    def close(self) -> None:
        self.ray.shutdown()
        if self.temp_dir is not None:
            shutil.rmtree(self.temp_dir, ignore_errors=True)


# ---------------------------------------------------------------------------- driver
class CellLog:
    """``OUT/cells.jsonl``: one row per finished or failed cell, appended as they come; with
    a record (``--record``, kept in git), every finished row is also kept there, its metrics
    cut to the validation rows, so a later machine without ``OUT`` skips those cells."""

    def __init__(self, path: Path, record: Path | None = None) -> None:
        self.path = path
        self.record = record

    def rows(self) -> list[dict[str, Any]]:
        """The record's rows, then this benchmark's own (the later of two matching wins)."""
        rows = bench_record.load(self.record) if self.record is not None else []
        if self.path.is_file():
            for line in self.path.read_text().splitlines():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError:  # a line cut short by a crash
                    continue
        return rows

    def finished(self, settings: Settings, cells: Sequence[Cell]) -> dict[Cell, dict[str, Any]]:
        """Rows of the planned ``cells`` that finished with these settings and configs."""
        planned = {cell: cell for cell in cells}
        found = {}
        for row in self.rows():
            cell = planned.get(Cell(row["task"], row["method"], row["seed"]))
            if (cell is not None and row.get("status") == "ok"
                    and settings.fields(cell) == {k: row.get(k) for k in settings.fields(cell)}
                    and resolved_config(row.get("config")) == cell.config):
                found[cell] = row
        return found

    def append(self, row: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a") as log:
            log.write(json.dumps(row) + "\n")
            log.flush()
            os.fsync(log.fileno())
        if row["status"] == "ok":
            self.keep([row])

    def keep(self, rows: Iterable[dict[str, Any]]) -> int:
        """Add to the record those finished rows it lacks (e.g. cells run before without
        ``--record``); returns how many were added."""
        if self.record is None:
            return 0
        kept = bench_record.load(self.record)
        added = 0
        for row in rows:
            short = {**row, "metrics": bench_record.validation_curve(row["metrics"])}
            if not any(_same_cell(short, old) for old in kept):
                bench_record.append(self.record, short)
                kept.append(short)
                added += 1
        return added


def _same_cell(row: dict[str, Any], other: dict[str, Any]) -> bool:
    """Whether two rows stand for the same cell: the identity fields and the config."""
    return (all(row.get(key) == other.get(key) for key in Settings.IDENTITY)
            and resolved_config(row.get("config")) == resolved_config(other.get("config")))


def _summary(row: dict[str, Any]) -> str:
    name = f"{row['task']}/{row['method']}_s{row['seed']}"
    if row["status"] != "ok":
        return f"{name} FAILED"
    if math.isnan(row["teacher_success"]):  # a task without success: its returns
        return f"{name} T {row['teacher_return']:.1f} S {row['student_return']:.1f} (return)"
    return f"{name} T {row['teacher_success']:.2f} S {row['student_success']:.2f}"


def _last_rows(path: Path, count: int, window: int = 65536) -> list[dict[str, Any]]:
    """The last ``count`` complete JSON lines of a file being appended to (read from its
    end: a metrics file grows by a row per iteration), [] when there is none yet."""
    try:
        with open(path, "rb") as file:
            size = file.seek(0, os.SEEK_END)
            file.seek(max(size - window, 0))
            lines = file.read().split(b"\n")
    except OSError:
        return []
    if size > window:
        lines = lines[1:]  # the first line read may be cut
    rows = []
    for line in lines[-count - 1:]:
        try:
            rows.append(json.loads(line))
        except ValueError:  # empty, or the row being written
            pass
    return rows[-count:]


def cell_progress(cell: Cell, settings: Settings) -> str:
    """``method_sS it/total ~N min left`` for a running cell, read from its metrics.jsonl (the
    time left from its last ten iterations); the bare name before its first iteration, or
    on a Ray node whose run directory this machine cannot see."""
    name = f"{cell.method}_s{cell.seed}"
    rows = _last_rows(settings.out / cell.task / name / "metrics.jsonl", 10)
    total = cell.config.get("train", {}).get("iterations")
    if not rows or not total or "iteration" not in rows[-1]:
        return name
    text = f"{name} {rows[-1]['iteration']}/{total}"
    first, last = rows[0], rows[-1]
    done = last["iteration"] - first.get("iteration", last["iteration"])
    spent = last.get("wall_time", 0.0) - first.get("wall_time", 0.0)
    if done > 0 and spent > 0:  # none from a single row
        text += f" ~{_duration((total - last['iteration']) * spent / done)} left"
    return text


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.0f} min" if seconds < 5400 else f"{seconds / 3600:.1f} h"


def run_cells(todo: Sequence[Cell], settings: Settings, backend: Backend, retries: int,
              log: CellLog, progress_every: float = 15.0) -> tuple[list[dict[str, Any]], bool]:
    """Run every cell, each up to 1 + ``retries`` times; returns the new rows and whether
    it ran to the end (False after Ctrl-C: running cells saved a checkpoint and stopped).
    Every ``progress_every`` seconds the bar shows each running cell's iteration."""
    queue = deque((cell, 1) for cell in todo)
    rows: list[dict[str, Any]] = []
    stopping = False
    last = ""
    bar = tqdm(total=len(todo), desc="cells", unit="cell", dynamic_ncols=True)

    def show_progress() -> None:
        running = ", ".join(cell_progress(cell, settings) for cell in backend.running_cells())
        bar.set_postfix_str("; ".join(part for part in (f"running: {running}" if running
                                                         else "", last) if part))

    def finish(row: dict[str, Any]) -> None:
        nonlocal last
        log.append(row)
        rows.append(row)
        bar.update(1)
        last = f"last: {_summary(row)}"

    def handle(cell: Cell, attempt: int, outcome: Outcome) -> None:
        if not isinstance(outcome, Failure):
            finish({**outcome, "attempts": attempt})
        elif stopping:
            tqdm.write(f"{cell.name}: stopped ({outcome.error})")
        elif attempt <= retries:
            tqdm.write(f"{cell.name}: attempt {attempt} failed ({outcome.error}); retrying")
            queue.append((cell, attempt + 1))
        else:
            finish({**settings.fields(cell), "status": "failed", "attempts": attempt,
                    "error": outcome.error, "traceback": outcome.traceback})

    try:
        while True:
            try:
                while queue and not stopping and backend.has_room():
                    cell, attempt = queue.popleft()
                    backend.submit(cell, settings, attempt)
                if not backend.busy():
                    break
                for cell, attempt, outcome in backend.wait(progress_every):
                    handle(cell, attempt, outcome)
                show_progress()
            except KeyboardInterrupt:
                if stopping:
                    tqdm.write("stopping at once")
                    backend.kill()
                    break
                stopping = True
                tqdm.write("interrupted: running cells finish their iteration, save a "
                           "checkpoint and stop (Ctrl-C again: stop at once)")
                backend.interrupt()
    finally:
        bar.close()
    return rows, not stopping


# --------------------------------------------------------------------------- planning
def preset_methods(task: str) -> list[str]:
    return [method for method in METHODS if preset_path(task, method).is_file()]


def plan_cells(tasks: Sequence[str] | None, methods: Sequence[str] | None,
               seeds: Sequence[int], overrides: Sequence[str]) -> list[Cell]:
    """Every requested cell, its config loaded (and so validated) before anything starts."""
    tasks = list(tasks or [task for task in TASKS if preset_methods(task)])
    pairs, missing = [], []
    for task in dict.fromkeys(tasks):
        wanted = list(dict.fromkeys(methods)) if methods else preset_methods(task)
        if not wanted:
            missing.append(str(preset_path(task, "<method>")))
        missing += [str(preset_path(task, m)) for m in wanted if not preset_path(task, m).is_file()]
        pairs += [(task, method) for method in wanted]
    if missing:
        raise PlanError(f"no preset for the requested task x method: {', '.join(missing)}")
    cells = []
    for task, method in pairs:
        for seed in dict.fromkeys(seeds):
            cfg = load_config(preset_path(task, method), [f"train.seed={seed}", *overrides])
            cells.append(Cell(task, method, seed, threads=cfg.train.torch_threads,
                              config=cfg.to_dict()))
    return cells


# ----------------------------------------------------------------------------- report
def mean_std(values: Sequence[float]) -> str:
    """``mean ± std`` over seeds (population std, as in the other benchmarks)."""
    return f"{np.mean(values):.3f} ± {np.std(values):.3f}"


def _count(n: float) -> str:
    if n >= 1e6:
        return f"{n / 1e6:.2f}M"
    if n >= 1e3:
        return f"{n / 1e3:.1f}k"
    return f"{n:.0f}"


def _counts(values: Iterable[float]) -> str:
    distinct = sorted(set(values))
    if not distinct:
        return "–"
    if len(distinct) == 1:
        return _count(distinct[0])
    return f"{_count(distinct[0])}–{_count(distinct[-1])} (differ across seeds)"


def budget_note(rows: Sequence[dict[str, Any]]) -> str:
    """Whether every finished run of a task had the same environment steps and student
    observations (images or noisy states, per task; the comparison is only fair if so)."""
    ok = [r for r in rows if r["status"] == "ok"]
    steps = {r["env_steps"] for r in ok}
    samples = {r["student_samples"] for r in ok}
    if not ok:
        return "No finished runs."
    if len(steps) == 1 and len(samples) == 1:
        return (f"Equal budgets: every finished run used {steps.pop():,} environment steps "
                f"and {samples.pop():,} student observations.")
    return ("**Budgets differ across runs** (the comparison is not on equal terms): "
            f"environment steps {', '.join(f'{s:,}' for s in sorted(steps))}; "
            f"student observations {', '.join(f'{s:,}' for s in sorted(samples))}.")


def _scores(rows: Sequence[dict[str, Any]]) -> tuple[str, tuple[str, str, str]]:
    """What a task's table compares: success rates, or the mean test returns for tasks
    without a success flag (their success is NaN, e.g. half_cheetah)."""
    ok = [r for r in rows if r["status"] == "ok"]
    if ok and all(np.isnan(r["teacher_success"]) for r in ok) and "teacher_return" in ok[0]:
        return "return", ("teacher_return", "student_return", "return_gap")
    return "success", ("teacher_success", "student_success", "gap")


def task_table(methods: Sequence[str], seeds: Sequence[int],
               rows: Sequence[dict[str, Any]]) -> list[str]:
    """One task's markdown table (per method, over seeds), its budget note and failures."""
    score, keys = _scores(rows)
    rows = [{**r, "return_gap": r["teacher_return"] - r["student_return"]}
            if score == "return" and r["status"] == "ok" else r for r in rows]
    lines = [f"| method | teacher {score} | student {score} | gap | seeds finished "
             "| env steps per run | student observations per run |",
             "|---|---|---|---|---|---|---|"]
    failures, not_run = [], []
    for method in methods:
        mine = [r for r in rows if r["method"] == method]
        ok = [r for r in mine if r["status"] == "ok"]
        failed = [r for r in mine if r["status"] != "ok"]
        finished = f"{len(ok)} / {len(seeds)}" + (f" ({len(failed)} FAILED)" if failed else "")
        if ok:
            values = [mean_std([r[key] for r in ok]) for key in keys]
        else:
            values = ["FAILED" if failed else "–"] * 3
        lines.append(f"| {method} | {' | '.join(values)} | {finished} "
                     f"| {_counts(r['env_steps'] for r in ok)} "
                     f"| {_counts(r['student_samples'] for r in ok)} |")
        failures += [f"- FAILED: `{method}` seed {r['seed']} after {r['attempts']} attempts: "
                     f"{r['error']}" for r in failed]
        absent = [str(seed) for seed in seeds if all(r["seed"] != seed for r in mine)]
        if absent:
            not_run.append(f"`{method}` seed{'s' if len(absent) > 1 else ''} "
                           f"{', '.join(absent)}")
    pending = [f"Not run yet: {'; '.join(not_run)}."] if not_run else []
    return [*lines, "", budget_note(rows), *pending, *seed_table(methods, seeds, rows),
            *metrics_table(methods, rows), *([""] + failures if failures else [])]


def seed_table(methods: Sequence[str], seeds: Sequence[int],
               rows: Sequence[dict[str, Any]]) -> list[str]:
    """Teacher / student score of each finished run by seed: the spread that a mean ± std
    over five seeds hides (one bad seed, or two methods ranked differently per seed)."""
    score, (teacher, student, _) = _scores(rows)
    done = {(r["method"], r["seed"]): r for r in rows if r["status"] == "ok"}
    if not done:
        return []
    digits = 2 if score == "success" else 1

    def cell(method: str, seed: int) -> str:
        row = done.get((method, seed))
        return "–" if row is None else f"{row[teacher]:.{digits}f} / {row[student]:.{digits}f}"

    return ["", f"Teacher / student {score} of each run:", "",
            "| method | " + " | ".join(f"seed {seed}" for seed in seeds) + " |",
            "|---|" + "---|" * len(seeds),
            *[f"| {method} | " + " | ".join(cell(method, seed) for seed in seeds) + " |"
              for method in methods]]


SUMMARY_KEYS = ("episodes", "success", "return", "length")  # in the main table already


def metrics_table(methods: Sequence[str], rows: Sequence[dict[str, Any]]) -> list[str]:
    """The task's own episode metrics (e.g. the arm's ``handle_visible``, the quadrotor's
    ``velocity_angle_deg``), teacher / student, each the mean over seeds of the test
    means; nothing for tasks without any."""
    ok = [r for r in rows if r["status"] == "ok" and isinstance(r.get("teacher"), dict)]
    keys = list(dict.fromkeys(k for r in ok for k in r["teacher"] if k not in SUMMARY_KEYS))
    if not keys:
        return []
    lines = ["", "Task metrics on the test episodes, teacher / student (mean over seeds):", "",
             "| method | " + " | ".join(keys) + " |", "|---|" + "---|" * len(keys)]
    def mean(runs: list[dict[str, Any]], role: str, key: str) -> str:
        values = [r[role][key] for r in runs if key in r[role]]
        return f"{np.mean(values):.3g}" if values else "–"

    for method in methods:
        mine = [r for r in ok if r["method"] == method]
        if mine:
            cells = [f"{mean(mine, 'teacher', k)} / {mean(mine, 'student', k)}" for k in keys]
            lines.append(f"| {method} | " + " | ".join(cells) + " |")
    return lines


def plot_success(methods: Sequence[str], rows: Sequence[dict[str, Any]], path: Path,
                 title: str) -> Path:
    """Teacher and student test success (or return, see ``_scores``) per method: mean over
    seeds, std error bars."""
    score, _ = _scores(rows)
    fig, ax = plt.subplots(figsize=(1.4 * len(methods) + 2.0, 3.6))
    x = np.arange(len(methods))
    for offset, role, color in ((-0.2, "teacher", "#f2a900"), (0.2, "student", "#333333")):
        values = [[r[f"{role}_{score}"] for r in rows
                   if r["method"] == m and r["status"] == "ok"] for m in methods]
        means = [np.mean(v) if v else np.nan for v in values]
        stds = [np.std(v) if v else np.nan for v in values]
        ax.bar(x + offset, means, width=0.4, yerr=stds, capsize=4, color=color, label=role)
    labels = [m if any(r["method"] == m and r["status"] == "ok" for r in rows)
              else f"{m}\n(FAILED)" for m in methods]
    ax.set_xticks(x, labels)
    ax.set_ylabel(f"test {score}")
    if score == "success":
        ax.set_ylim(0, 1.05)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_curves(methods: Sequence[str], rows: Sequence[dict[str, Any]], path: Path,
                title: str) -> Path:
    """Validation learning curves (success, or return, see ``_scores``) from the rows'
    metrics (the run directories may be on other machines): each run's rows as a
    metrics.jsonl for ``plot_learning_curves``."""
    score, _ = _scores(rows)
    with tempfile.TemporaryDirectory() as tmp:
        runs: dict[str, list[Path]] = {}
        for row in rows:
            if row["status"] != "ok" or row["method"] not in methods:
                continue
            run_dir = Path(tmp) / f"{row['method']}_s{row['seed']}"
            run_dir.mkdir()
            (run_dir / "metrics.jsonl").write_text(
                "".join(json.dumps(m) + "\n" for m in row["metrics"]))
            runs.setdefault(row["method"], []).append(run_dir)
        ordered = {m: runs[m] for m in methods if m in runs}
        return plot_learning_curves(ordered, path, title=title,
                                    keys=(f"eval/teacher_{score}", f"eval/student_{score}"))


@dataclass
class TaskReport:
    task: str
    methods: list[str]
    seeds: list[int]
    rows: list[dict[str, Any]]
    table: list[str]
    figures: dict[str, Path]


def report_task(task: str, cells: Sequence[Cell], rows: Sequence[dict[str, Any]],
                out: Path) -> TaskReport:
    mine = [c for c in cells if c.task == task]
    methods = list(dict.fromkeys(c.method for c in mine))
    seeds = list(dict.fromkeys(c.seed for c in mine))
    task_rows = [r for r in rows if r["task"] == task]
    score, _ = _scores(task_rows)
    figures = {"success": plot_success(methods, task_rows, out / task / "success.png",
                                       f"{task}: test {score} (mean ± std over seeds)")}
    if any(VALIDATION_KEY in m for r in task_rows if r["status"] == "ok" for m in r["metrics"]):
        figures["learning_curves"] = plot_curves(
            methods, task_rows, out / task / "learning_curves.png",
            f"{task}: validation {score} (mean ± std over seeds)")
    return TaskReport(task, methods, seeds, task_rows, task_table(methods, seeds, task_rows),
                      figures)


def write_docs(report: TaskReport, command: str, settings: Settings, backend: str,
               docs: Path, variant: str = "") -> None:
    """The ``matrix_<task>`` (or ``matrix_<task>_<variant>``) section of
    ``docs/results.md`` and its figures."""
    prefix = f"matrix_{report.task}" + (f"_{variant}" if variant else "")
    images = copy_figures(prefix, report.figures, docs)
    replace_section(prefix, [
        f"## Benchmark matrix: {report.task}" + (f" ({variant})" if variant else ""),
        "",
        f"Command: `{command}` (from the repository root, in `.venv`; "
        f"{time.strftime('%Y-%m-%d')}).",
        f"Driver: {platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}; "
        f"cells on {backend}. Evaluation: {settings.episodes} test episodes per role and run, "
        f"deterministic actions, the {settings.checkpoint} networks of each run. "
        "Mean ± std over seeds.",
        "",
        *report.table,
        "",
        f"![test {_scores(report.rows)[0]} per method]({images['success']})",
        "",
        f"![learning curves]({images['learning_curves']})" if "learning_curves" in images
        else "No learning curves: the runs had no validation (train.eval_every 0).",
    ], docs)


# ------------------------------------------------------------------------------- CLI
def _at_least(minimum: int) -> Any:
    def parse(text: str) -> int:
        value = int(text)
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be >= {minimum}, got {value}")
        return value
    return parse


def _seconds(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0 seconds, got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sitt-bench", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", nargs="+", choices=sorted(TASKS), metavar="TASK",
                        help="default: every task with presets")
    parser.add_argument("--methods", nargs="+", choices=METHODS, metavar="METHOD",
                        help="default: every method with a preset for the task")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    parser.add_argument("--episodes", type=_at_least(1), default=200,
                        help="test episodes per role and run (default: 200)")
    parser.add_argument("--checkpoint", choices=("last", "best"), default="last",
                        help="evaluate the final or the validation-best networks")
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        metavar="SECTION.KEY=VALUE", help="config override for every cell")
    parser.add_argument("--out", type=Path, default=Path("runs/matrix"))
    parser.add_argument("--workers", type=_at_least(1),
                        help="local worker processes (default: os.cpu_count()); with --ray, "
                             "the most cells in flight (default: all) and a local instance's "
                             "CPUs")
    parser.add_argument("--ray", metavar="ADDRESS",
                        help="run the cells as Ray tasks on this cluster; 'local': start a "
                             "local Ray instance on 127.0.0.1 only")
    parser.add_argument("--retries", type=_at_least(0), default=2,
                        help="tries after a cell's first failure (default: 2)")
    parser.add_argument("--progress-every", type=_seconds, default=15.0, metavar="SECONDS",
                        help="how often the progress bar shows the running cells' "
                             "iterations and time left (default: 15)")
    parser.add_argument("--record", type=Path, metavar="DIR",
                        help="also keep every finished cell in DIR/cells.jsonl (for git, "
                             "e.g. docs/records/<task>): its cells count as finished on "
                             "any machine, with or without OUT")
    parser.add_argument("--recorded-only", action="store_true",
                        help="train nothing: report the finished cells (OUT and --record) "
                             "and name the others as not run yet")
    parser.add_argument("--write-docs", action="store_true",
                        help="write the matrix_<task> sections of results.md and figures")
    parser.add_argument("--docs-variant", default="", metavar="NAME",
                        help="write the sections as matrix_<task>_NAME instead, beside the "
                             "plain ones (e.g. a matrix run with --set overrides)")
    parser.add_argument("--docs-dir", type=Path, default=Path(os.environ.get(DOCS_ENV, "docs")),
                        help=f"where --write-docs writes (default: ${DOCS_ENV} or docs)")
    return parser


def make_backend(args: argparse.Namespace) -> Backend:
    if args.ray is None:
        return LocalBackend(args.workers or os.cpu_count() or 1)
    return RayBackend(args.ray, args.workers)


def describe_backend(args: argparse.Namespace) -> str:
    if args.ray is None:
        workers = args.workers or os.cpu_count() or 1
        return f"{workers} local worker process{'es' if workers > 1 else ''}"
    return "a local Ray instance" if args.ray == "local" else f"the Ray cluster {args.ray}"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser().parse_args(argv)
    try:
        cells = plan_cells(args.tasks, args.methods, args.seeds, args.overrides)
    except (ConfigError, PlanError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    settings = Settings(args.out.resolve(), args.episodes, args.checkpoint,
                        tuple(args.overrides))
    log = CellLog(settings.out / CELLS_FILE, args.record)
    done = log.finished(settings, cells)
    todo = [cell for cell in cells if cell not in done]
    where = f"{log.path}" + (f" and {args.record}" if args.record else "")
    print(f"{len(cells)} cells, {len(cells) - len(todo)} already finished in {where}",
          flush=True)
    if log.keep(done[cell] for cell in cells if cell in done):  # in the planned order
        print(f"added the finished cells missing from {args.record} to it", flush=True)
    complete = True
    new_rows: list[dict[str, Any]] = []
    if todo and args.recorded_only:
        print(f"not run yet: {', '.join(cell.name for cell in todo)}", flush=True)
        if not done:
            print("error: none of the requested cells has finished", file=sys.stderr)
            return 1
    elif todo:
        try:
            backend = make_backend(args)
        except (ConnectionError, RuntimeError) as err:  # Ray not reachable or not loopback
            print(f"error: {err}", file=sys.stderr)
            return 2
        # Ctrl-C and SIGTERM stop the benchmark cleanly, whatever this process inherited (a
        # parent may leave SIGINT ignored or blocked; both pass to children, and the local
        # cells are forked from here).
        old_int = signal.signal(signal.SIGINT, signal.default_int_handler)
        old_term = signal.signal(signal.SIGTERM, signal.default_int_handler)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT, signal.SIGTERM})
        try:
            new_rows, complete = run_cells(todo, settings, backend, args.retries, log,
                                           args.progress_every)
        finally:
            signal.signal(signal.SIGTERM, old_term)
            signal.signal(signal.SIGINT, old_int)
            backend.close()
    rows = [done[c] for c in cells if c in done] + new_rows
    reports = [report_task(task, cells, rows, settings.out)
               for task in dict.fromkeys(c.task for c in cells)]
    text = "\n\n".join("\n".join([f"## {r.task}", "", *r.table]) for r in reports)
    print("\n" + text)
    (settings.out / "results.md").write_text(text + "\n")
    if not complete:
        print("interrupted: run the same command again to continue", file=sys.stderr)
        return 130
    if args.write_docs:
        command = "sitt-bench " + shlex.join(argv)
        for report in reports:
            write_docs(report, command, settings, describe_backend(args), args.docs_dir,
                       args.docs_variant)
    return 1 if any(r["status"] != "ok" for r in new_rows) else 0


if __name__ == "__main__":
    raise SystemExit(main())
