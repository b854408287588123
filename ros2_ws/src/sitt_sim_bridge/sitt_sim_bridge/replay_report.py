"""Replay evaluation helpers: answer matching, action-error metrics, text report and plot.

Pure NumPy (matplotlib only for the plot), shared by the offline and the live replay.
"""

from __future__ import annotations

import bisect
import math
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

Key = tuple[int, int]  # (time ns, order in the bag): total order even when log times tie


def match_answers(frames: Sequence[tuple[Key, int]], actions: Sequence[tuple[Key, int]],
                  horizon: Key | None = None) -> list[int | None]:
    """The action answering each frame; both lists sorted by key, items ``(key, stamp_ns)``.

    Lockstep first: the first unused action after the frame whose header stamp equals the
    frame's (a node on the simulator's clock stamps its answer with the frame's time).
    Otherwise the first unused action after the frame and before the next frame (after
    the last frame: before ``horizon``); no such action -> None (the node did not answer).
    Each action answers at most one frame, so a dropped frame cannot shift the rest."""
    keys = [k for k, _ in actions]
    by_stamp: dict[int, list[int]] = defaultdict(list)
    for j, (_, stamp) in enumerate(actions):
        if stamp:
            by_stamp[stamp].append(j)
    used = np.zeros(len(actions), dtype=bool)
    out: list[int | None] = []
    for i, (key, stamp) in enumerate(frames):
        answer = None
        if stamp:
            answer = next((j for j in by_stamp.get(stamp, ())
                           if keys[j] > key and not used[j]), None)
        if answer is None:
            limit = frames[i + 1][0] if i + 1 < len(frames) else horizon
            j = bisect.bisect_right(keys, key)
            while j < len(keys) and used[j]:
                j += 1
            if j < len(keys) and (limit is None or keys[j] < limit):
                answer = j
        if answer is not None:
            used[answer] = True
        out.append(answer)
    return out


def _corr(a: np.ndarray, b: np.ndarray) -> float | None:
    """Pearson correlation; None when either side is constant (undefined)."""
    if a.size < 2 or np.ptp(a) == 0.0 or np.ptp(b) == 0.0:
        return None
    return float(np.corrcoef(a, b)[0, 1])


def action_errors(recorded: np.ndarray, replayed: np.ndarray, names: Sequence[str],
                  units: Sequence[str], scale: np.ndarray) -> dict[str, Any]:
    """Per-dimension MAE, RMSE, max error and correlation, normalised and physical
    (physical error = |scale| x normalised error, as physical = offset + scale x action)."""
    recorded = np.asarray(recorded, dtype=np.float64).reshape(-1, len(names))
    replayed = np.asarray(replayed, dtype=np.float64).reshape(-1, len(names))
    err = np.abs(replayed - recorded)
    out: dict[str, Any] = {"names": list(names), "units": list(units), "count": len(err)}
    for kind, factor in (("normalised", np.ones(len(names))),
                         ("physical", np.abs(np.asarray(scale, dtype=np.float64)))):
        e = err * factor
        empty = not len(e)
        out[kind] = {
            "mae": [None] * len(names) if empty else e.mean(axis=0).tolist(),
            "rmse": [None] * len(names) if empty else np.sqrt((e ** 2).mean(axis=0)).tolist(),
            "max": [None] * len(names) if empty else e.max(axis=0).tolist(),
            "corr": [_corr(recorded[:, d], replayed[:, d]) for d in range(len(names))],
        }
        out[f"max_{kind}"] = None if empty else float(e.max())
    return out


def latency_stats(latencies_ms: Sequence[float]) -> dict[str, float | None]:
    lat = np.asarray(latencies_ms, dtype=np.float64)
    if not lat.size:
        return {"count": 0, "mean": None, "p50": None, "p90": None, "p99": None, "max": None}
    return {"count": int(lat.size), "mean": float(lat.mean()),
            "p50": float(np.percentile(lat, 50)), "p90": float(np.percentile(lat, 90)),
            "p99": float(np.percentile(lat, 99)), "max": float(lat.max())}


def _fmt(value: float | None, spec: str = ".3g") -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) \
        else format(value, spec)


def text_report(report: dict[str, Any]) -> str:
    """The report as a few readable lines (``--json`` prints the whole dict instead)."""
    f = report["frames"]
    lines = [f"sitt-replay ({report['mode']}): {report['bag']} ({report['storage']}) with "
             f"{report['model']}",
             "  topics: " + ", ".join(f"{k}={v}" for k, v in report["topics"].items() if v),
             f"  alignment by {report['clock']}; previous action: {report['previous_action']}",
             f"  frames: {f['total']} total, {f['replayed']} replayed "
             f"(coverage {report['coverage']:.1%}), {f['compared']} compared with a "
             f"recorded action, {f['unanswered']} without one"]
    if report["skipped"]:
        lines.append("  skipped: " + ", ".join(f"{k} {v}" for k, v in report["skipped"].items()))
    tg = report.get("targets")
    if tg:  # integrated actions (joint targets)
        lines.append(f"  joint targets: steps start from {tg['source']}" + (
            "" if tg["continued"] is None else
            f"; {tg['continued']} step(s) continue the node's previous target, "
            f"{tg['restarted']} restart from the measured joints"))
    err = report.get("action_error")
    if err and err["count"]:
        lines.append(f"  action error vs recorded ({err['count']} steps): max "
                     f"{_fmt(err['max_normalised'])} normalised, "
                     f"{_fmt(err['max_physical'])} physical")
        for d, name in enumerate(err["names"]):
            n, p = err["normalised"], err["physical"]
            lines.append(f"    {name:>18}: MAE {_fmt(n['mae'][d])} (phys {_fmt(p['mae'][d])} "
                         f"{err['units'][d]}), max {_fmt(n['max'][d])} "
                         f"(phys {_fmt(p['max'][d])}), corr {_fmt(n['corr'][d], '.4f')}")
    tgt = report.get("target_error")
    if tgt and tgt["count"]:
        lines.append(f"  target error vs recorded ({tgt['count']} steps): max "
                     f"{_fmt(tgt['max_overall'])}; per joint max " + ", ".join(
                         f"{n} {_fmt(m)} {u}" for n, m, u in
                         zip(tgt["names"], tgt["max"], tgt["units"], strict=True)))
    t = report["throughput"]
    lines.append(f"  throughput: {t['messages']} messages in {t['seconds']:.3f} s = "
                 f"{t['messages_per_s']:.0f} msgs/s ({t['frames_per_s']:.0f} frames/s)")
    if "latency_ms" in report:
        lat = report["latency_ms"]
        lines.append(f"  latency publish -> action [ms]: p50 {_fmt(lat['p50'])}, p99 "
                     f"{_fmt(lat['p99'])}, max {_fmt(lat['max'])}; drops {report['drops']} "
                     f"of {report['published_frames']} frames")
    lines += [f"  warning: {w}" for w in report["warnings"]]
    if report.get("plot"):
        lines.append(f"  plot: {report['plot']}")
    return "\n".join(lines)


def plot_actions(path: Path, times_s: np.ndarray, recorded: np.ndarray,
                 replayed: np.ndarray, names: Sequence[str], units: Sequence[str],
                 title: str) -> None:
    """Recorded vs replayed physical actions over time, one panel per dimension (PNG)."""
    import matplotlib

    matplotlib.use("Agg")  # no display on a robot or in CI
    import matplotlib.pyplot as plt

    n = len(names)
    fig, axes = plt.subplots(n, 1, figsize=(9, 1.9 * n + 0.6), sharex=True, squeeze=False)
    for d, ax in enumerate(axes[:, 0]):
        ax.plot(times_s, recorded[:, d], lw=1.6, color="0.3", label="recorded")
        ax.plot(times_s, replayed[:, d], lw=1.0, ls="--", color="tab:red", label="replayed")
        ax.set_ylabel(f"{names[d]}\n[{units[d]}]", fontsize=8)
        ax.grid(alpha=0.3)
    axes[0, 0].legend(loc="upper right", fontsize=8)
    axes[0, 0].set_title(title, fontsize=9)
    axes[-1, 0].set_xlabel("time since the first frame [s]")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
