"""Write docker/requirements-*.txt: the pinned subsets of requirements.txt that the images need.

    .venv/bin/python docker/gen_requirements.py           # rewrite the files
    .venv/bin/python docker/gen_requirements.py --check   # exit 1 when one is out of date

Every version comes from the top-level requirements.txt (the pins the venv and the tests
use); nothing is pinned twice by hand. Which distributions an image needs: the roots below
and their runtime dependencies, read from the metadata of the distributions installed in
the venv (which `make venv` builds from requirements.txt), with markers evaluated for the
images' Python 3.12 (Ubuntu 24.04, the ROS 2 Kilted base) on Linux amd64 and arm64. The
images install each file with `pip install --no-deps`, so a file must be complete: a
dependency missing from requirements.txt, or a pin that does not satisfy a dependency's
specifier, is an error here, not at `docker build` time.

Left out on purpose:
- ROS 2 itself (rclpy, the message packages, rmw, launch, ament_index_python, colcon):
  the ROS base image's apt packages, built for its Python;
- test, lint and benchmark tools (pytest, ruff, hadolint, stable-baselines3).

numpy is pinned like everything else (2.x), above the base image's apt numpy 1.26: the
images put the pip directories first on PYTHONPATH. The apt message packages' generated C
code only reads ndarray fields through the header's struct macros (no numpy C-API table,
no import_array), so it is not tied to numpy 1's ABI; tests/test_docker.py checks that on
the generated sources of the same rosidl_generator_py release.
"""

from __future__ import annotations

import argparse
import importlib.metadata as md
import sys
from pathlib import Path

from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

DOCKER = Path(__file__).resolve().parent
REQUIREMENTS = DOCKER.parent / "requirements.txt"

# What each image's Python code imports beyond ROS 2 (package.xml python keys, plus what
# a package imports without declaring it).
ONBOARD_ROOTS = ("numpy", "onnxruntime")  # sitt_policy_node
TRAIN_ROOTS = (
    *ONBOARD_ROOTS,
    # sitt_training
    "PyYAML", "matplotlib", "tqdm", "gymnasium", "pybullet", "torch", "onnx", "onnxscript",
    "tensorboard",
    # sitt_sim_bridge (bags)
    "rosbags",
)

# file -> (roots, which of the closure goes into it, how the Dockerfile installs it)
FILES = {
    "requirements-onboard.txt": (
        ONBOARD_ROOTS, lambda name: True,
        "docker/Dockerfile.onboard: the policy node's Python deps (no torch, no pybullet);\n"
        "pip install --no-deps --only-binary=:all: --target /opt/sitt_ws/pydeps"),
    "requirements-train.txt": (
        TRAIN_ROOTS, lambda name: name not in ("torch", "pybullet"),
        "docker/Dockerfile.train: every binary wheel of the training image;\n"
        "pip install --no-deps --only-binary=:all: --target /opt/sitt_ws/pydeps"),
    "requirements-torch.txt": (
        TRAIN_ROOTS, lambda name: name == "torch",
        "docker/Dockerfile.train: PyTorch from the CPU wheel index (TORCH_INDEX_URL);\n"
        "its own dependencies are in requirements-train.txt"),
    "requirements-pybullet.txt": (
        TRAIN_ROOTS, lambda name: name == "pybullet",
        "docker/Dockerfile.train: pybullet, built from the sdist where PyPI has no wheel\n"
        "for the platform, against the numpy in requirements-train.txt\n"
        "(pip install --no-build-isolation with /opt/sitt_ws/pydeps on PYTHONPATH)"),
}

# The images' interpreters: Ubuntu 24.04's CPython 3.12 on both architectures.
IMAGE_ENVIRONMENTS = [
    {"python_version": "3.12", "python_full_version": "3.12.3", "sys_platform": "linux",
     "platform_system": "Linux", "os_name": "posix", "platform_machine": machine,
     "implementation_name": "cpython", "platform_python_implementation": "CPython",
     "extra": ""}
    for machine in ("x86_64", "aarch64")
]


class RequirementsError(Exception):
    """The images' requirements cannot be derived from requirements.txt."""


def read_pins(path: Path = REQUIREMENTS) -> dict[str, tuple[str, str]]:
    """requirements.txt -> {canonical name: (name as written, version)}; == pins only."""
    pins: dict[str, tuple[str, str]] = {}
    for number, raw in enumerate(path.read_text().splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        req = Requirement(line)
        specs = list(req.specifier)
        if len(specs) != 1 or specs[0].operator != "==" or req.marker or req.url:
            raise RequirementsError(f"{path.name}:{number}: not an exact pin: {raw.strip()}")
        pins[canonicalize_name(req.name)] = (req.name, specs[0].version)
    return pins


def _applies(req: Requirement) -> bool:
    if req.marker is None:
        return True
    return any(Marker(str(req.marker)).evaluate(env) for env in IMAGE_ENVIRONMENTS)


def closure(roots: tuple[str, ...], pins: dict[str, tuple[str, str]]) -> list[str]:
    """Canonical names of the roots and everything they need at run time (sorted)."""
    seen: set[str] = set()
    todo = [canonicalize_name(r) for r in roots]
    problems: list[str] = []
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        if name not in pins:
            problems.append(f"{name} is needed but not pinned in requirements.txt")
            continue
        try:
            installed, requires = md.version(name), md.requires(name) or []
        except md.PackageNotFoundError:
            problems.append(f"{name} is not installed in this environment (run make venv)")
            continue
        if Version(installed).public != Version(pins[name][1]).public:
            problems.append(f"{name} {installed} is installed, requirements.txt pins "
                            f"{pins[name][1]} (run make venv)")
            continue
        for text in requires:
            req = Requirement(text)
            if not _applies(req):
                continue
            dep = canonicalize_name(req.name)
            if dep in pins and not req.specifier.contains(Version(pins[dep][1]),
                                                          prereleases=True):
                problems.append(f"{name} needs {text}, requirements.txt pins "
                                f"{pins[dep][0]}=={pins[dep][1]}")
            todo.append(dep)
    if problems:
        raise RequirementsError("; ".join(sorted(set(problems))))
    return sorted(seen)


def render(filename: str, pins: dict[str, tuple[str, str]] | None = None) -> str:
    """The text docker/<filename> must have."""
    pins = read_pins() if pins is None else pins
    roots, keep, how = FILES[filename]
    names = [n for n in closure(roots, pins) if keep(n)]
    header = [
        "# Generated by docker/gen_requirements.py from requirements.txt: do not edit.",
        "# Regenerate: .venv/bin/python docker/gen_requirements.py",
        *(f"# {line}" for line in how.splitlines()),
    ]
    body = [f"{pins[n][0]}=={pins[n][1]}" for n in sorted(names, key=lambda n: pins[n][0].lower())]
    return "\n".join(header + body) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="only compare; exit 1 when a file is out of date")
    args = parser.parse_args(argv)
    try:
        pins = read_pins()
        wanted = {name: render(name, pins) for name in FILES}
    except RequirementsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    stale = []
    for name, text in wanted.items():
        path = DOCKER / name
        if path.exists() and path.read_text() == text:
            continue
        stale.append(name)
        if not args.check:
            path.write_text(text)
    if args.check and stale:
        print("out of date: " + ", ".join(f"docker/{n}" for n in stale)
              + " (run .venv/bin/python docker/gen_requirements.py)", file=sys.stderr)
        return 1
    for name in stale:
        print(f"wrote docker/{name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
