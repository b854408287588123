"""Pack this venv's Python, ROS 2 wheels, numpy and onnxruntime into one relocatable tarball.

    python bench/pack_ros_runtime.py --out .devbundle/py311_ros.tar.xz

For measuring the policy node on another x86-64 Linux computer that has no network and
no Python 3.11 (the ROS 2 wheels on PyPI are cp311 only): copy the tarball and the
repository there, then

    mkdir -p /tmp/py && tar -xJf py311_ros.tar.xz -C /tmp/py
    export LD_LIBRARY_PATH=/tmp/py/lib PYTHONPATH=ros2_ws/src/sitt_policy_node:\\
ros2_ws/src/sitt_sim_bridge:ros2_ws/src/sitt_training:bench
    /tmp/py/bin/python3.11 bench/policy_latency.py --model student.onnx

``--model`` is needed there: the default exports an untrained student with torch, which
the tarball leaves out. The interpreter finds its prefix from where it lies, and the ROS
wheels' bootstrapper sets the library path from that prefix, so any folder works;
``bin/policy_node`` (what the benchmark starts) is written for ``--prefix`` (default
/tmp/py). Holds only what the node and the benchmark import: no torch, pybullet or
training code. Files that the wheels install twice (they cannot hold symbolic links) are
stored once, as hard links.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata as md
import io
import os
import sys
import sysconfig
import tarfile
import time
from pathlib import Path

from tqdm import tqdm

# Distributions beside the ros-* ones that the node and the benchmark import at run time.
RUNTIME_DISTS = {"numpy", "onnxruntime", "pyyaml", "lark", "lark-parser", "packaging",
                 "flatbuffers", "protobuf", "coloredlogs", "humanfriendly",
                 "typing-extensions", "empy", "catkin-pkg", "pyparsing", "python-dateutil",
                 "six"}
# Stdlib parts nobody imports at run time.
STDLIB_SKIP = {"site-packages", "test", "idlelib", "tkinter", "ensurepip", "lib2to3",
               "turtledemo", "__pycache__"}
NODE_LAUNCHER = """#!{prefix}/bin/python{ver}
import sys
from sitt_policy_node.node import main
sys.exit(main())
"""


def _norm(name: str) -> str:
    return name.lower().replace("_", "-")


def venv_files(venv: Path) -> list[Path]:
    """Every file the ROS wheels and RUNTIME_DISTS installed inside ``venv``."""
    site = Path(sysconfig.get_paths()["purelib"])
    files: set[Path] = set()
    for dist in md.distributions(path=[str(site)]):
        name = _norm(dist.metadata["Name"])
        if not (name.startswith("ros-") or name in RUNTIME_DISTS):
            continue
        for f in dist.files or []:
            path = (site / str(f)).resolve()
            if path.is_file() and venv in path.parents and "__pycache__" not in path.parts:
                files.add(path.relative_to(venv))
    return sorted(files)


def _add_deduplicated(tar: tarfile.TarFile, src: Path, arcname: str,
                      seen: dict[str, str]) -> None:
    if src.stat().st_size >= 4096:
        digest = hashlib.sha1(src.read_bytes()).hexdigest()
        if digest in seen:
            info = tarfile.TarInfo(arcname)
            info.type, info.linkname = tarfile.LNKTYPE, seen[digest]
            tar.addfile(info)
            return
        seen[digest] = arcname
    tar.add(src, arcname=arcname, recursive=False)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, required=True,
                        help="tarball to write: .tar.xz, or .tar uncompressed")
    parser.add_argument("--prefix", default="/tmp/py", help="absolute folder it will be "
                        "unpacked in there (bin/policy_node's first line names it)")
    args = parser.parse_args()
    if not args.prefix.startswith("/"):
        parser.error(f"--prefix must be an absolute path, not {args.prefix!r}")
    if sys.prefix == sys.base_prefix:
        parser.error("run it with the repository's venv (make venv; source .venv/bin/activate)")
    venv = Path(sys.prefix).resolve()
    base = Path(sys.base_prefix)
    ver = f"{sys.version_info.major}.{sys.version_info.minor}"
    libpython = base / "lib" / f"libpython{ver}.so.1.0"
    stdlib = Path(sysconfig.get_paths()["stdlib"])  # the base interpreter's, also in a venv

    args.out.parent.mkdir(parents=True, exist_ok=True)
    seen: dict[str, str] = {}
    mode = "w:xz" if args.out.name.endswith(".xz") else "w"  # plain .tar: fast, for tests
    with tarfile.open(args.out, mode) as tar:
        python = Path(os.path.realpath(sys.executable))
        tar.add(python, arcname=f"bin/python{ver}")
        if libpython.exists():  # a shared-library build (pyenv's is)
            tar.add(libpython, arcname=f"lib/{libpython.name}")
        members = [(path, f"lib/python{ver}/{path.relative_to(stdlib)}")
                   for path in sorted(stdlib.rglob("*")) if path.is_file()
                   and not STDLIB_SKIP & set(path.relative_to(stdlib).parts)
                   and not path.relative_to(stdlib).parts[0].startswith("config-")]
        members += [(venv / rel, str(rel)) for rel in venv_files(venv)]
        for src, arcname in tqdm(members, desc="packing", unit="file"):
            _add_deduplicated(tar, src, arcname, seen)
        launcher = NODE_LAUNCHER.format(prefix=args.prefix.rstrip("/"), ver=ver).encode()
        info = tarfile.TarInfo("bin/policy_node")
        info.size, info.mode, info.mtime = len(launcher), 0o755, int(time.time())
        tar.addfile(info, io.BytesIO(launcher))
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.1f} MB); unpack it at "
          f"{args.prefix}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
