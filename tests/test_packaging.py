"""The ROS workspace builds with colcon and installs in pip-editable form."""

import importlib.util
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SRC = REPO_ROOT / 'ros2_ws' / 'src'
VENV_BIN = Path(sys.executable).parent  # not resolved: the venv's bin/, not /usr/bin
PACKAGES = ['sitt_training', 'sitt_policy_node', 'sitt_sim_bridge']
# package -> executables that `ros2 run <package> <exe>` must find in lib/<package>/
EXECUTABLES = {
    'sitt_training': ['sitt-train', 'sitt-eval', 'sitt-bench', 'train'],
    'sitt_policy_node': ['policy_node'],
    'sitt_sim_bridge': ['sim_bridge', 'sitt-replay', 'sitt-hil'],
}


def _run(cmd, env, timeout=60, **kw):
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout, **kw)


@pytest.fixture(scope='module')
def colcon_install(tmp_path_factory):
    """colcon build of ros2_ws/src into a temp dir (once for this module)."""
    tmp = tmp_path_factory.mktemp('colcon')
    env = dict(os.environ, COLCON_HOME=str(tmp / 'colcon_home'))  # ignore user defaults
    cmd = [str(VENV_BIN / 'colcon'), '--log-base', str(tmp / 'log'), 'build',
           '--base-paths', str(SRC),
           '--build-base', str(tmp / 'build'), '--install-base', str(tmp / 'install')]
    proc = _run(cmd, env, timeout=300, cwd=tmp)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return tmp / 'install'


# package -> data files installed under share/<package>/ (launch files look for them there)
SHARE_FILES = {'sitt_policy_node': ['config/policy_node.yaml']}


@pytest.mark.parametrize('pkg', PACKAGES)
def test_colcon_installs_ament_layout(colcon_install, pkg):
    prefix = colcon_install / pkg
    for exe in EXECUTABLES[pkg]:
        path = prefix / 'lib' / pkg / exe
        assert path.is_file() and os.access(path, os.X_OK), path
    for rel in SHARE_FILES.get(pkg, []):
        assert (prefix / 'share' / pkg / rel).is_file(), rel
    assert (prefix / 'share' / 'ament_index' / 'resource_index' / 'packages' / pkg).is_file()
    assert (prefix / 'share' / pkg / 'package.xml').is_file()


def test_colcon_installed_policy_node_runs(colcon_install, ros_env):
    """The installed script runs from the install space, not only the editable copy."""
    prefix = colcon_install / 'sitt_policy_node'
    site = prefix / 'lib' / f'python{sys.version_info.major}.{sys.version_info.minor}'
    env = dict(ros_env, PYTHONPATH=str(site / 'site-packages'))
    proc = _run([str(prefix / 'lib' / 'sitt_policy_node' / 'policy_node')], env)
    assert proc.returncode != 0
    assert 'no model_path given' in proc.stderr
    code = 'import sitt_policy_node; print(sitt_policy_node.__file__)'
    where = _run([sys.executable, '-c', code], env)
    assert where.stdout.strip().startswith(str(site)), where.stdout


def test_launch_files_find_console_scripts_in_a_colcon_install(colcon_install):
    """Off PATH (a ROS install), sitt-train and sitt-replay are found in lib/<package>/."""
    prefixes = os.pathsep.join(str(colcon_install / p) for p in PACKAGES)
    code = ('from sitt_training.executables import find_executable as f; '
            'print(f("sitt-train", "sitt_training")); print(f("sitt-replay", "sitt_sim_bridge")); '
            'print(f("no-such-script", "sitt_training"))')
    env = dict(os.environ, PATH='/usr/bin:/bin', AMENT_PREFIX_PATH=prefixes)
    out = _run([sys.executable, '-c', code], env)
    assert out.returncode == 0, out.stderr
    train, replay, missing = out.stdout.split()
    assert train == str(colcon_install / 'sitt_training' / 'lib' / 'sitt_training' / 'sitt-train')
    assert replay == str(colcon_install / 'sitt_sim_bridge' / 'lib' / 'sitt_sim_bridge'
                         / 'sitt-replay')
    assert missing == 'no-such-script'
    # With the venv on PATH (the pip install), PATH wins.
    env['PATH'] = f'{VENV_BIN}{os.pathsep}/usr/bin:/bin'
    out = _run([sys.executable, '-c', code], env)
    assert out.stdout.split()[0] == str(VENV_BIN / 'sitt-train')


@pytest.mark.parametrize('pkg', PACKAGES)
def test_editable_install_points_at_the_source(pkg):
    spec = importlib.util.find_spec(pkg)
    assert spec is not None and spec.origin is not None, f'{pkg} not installed; run make venv'
    assert Path(spec.origin).resolve().is_relative_to(SRC / pkg), spec.origin


@pytest.mark.parametrize('exe', ['sitt-train', 'sitt-eval', 'sitt-bench', 'policy_node',
                                 'sim_bridge', 'sitt-replay', 'sitt-hil'])
def test_console_scripts_on_venv_path(exe):
    assert (VENV_BIN / exe).is_file(), f'{exe} missing from {VENV_BIN}; run make venv'


def test_policy_node_without_model_path_fails_clearly(ros_env):
    proc = _run([str(VENV_BIN / 'policy_node')], ros_env)
    assert proc.returncode != 0
    assert 'no model_path given' in proc.stderr


def test_sim_bridge_rejects_a_bad_parameter_clearly(ros_env):
    proc = _run([str(VENV_BIN / 'sim_bridge'), '--ros-args', '-p', 'mode:=fast'], ros_env)
    assert proc.returncode == 1
    assert 'expected one of lockstep, realtime' in proc.stderr


def test_policy_node_stays_free_of_training_deps():
    code = ('import sys, sitt_policy_node.node; '
            "print(sorted({'torch', 'pybullet', 'sitt_training'} & set(sys.modules)))")
    proc = _run([sys.executable, '-c', code], dict(os.environ))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == '[]'


@pytest.mark.parametrize('pkg', PACKAGES)
def test_package_xml(pkg):
    root = ET.parse(SRC / pkg / 'package.xml').getroot()
    assert root.tag == 'package' and root.get('format') == '3'
    assert root.findtext('name') == pkg
    assert root.findtext('export/build_type') == 'ament_python'


def test_readme_commands_are_what_ci_and_make_run():
    """The README's two fresh-machine commands, .ci/run and the Makefile do not drift."""
    import re

    readme = (REPO_ROOT / 'README.md').read_text()
    block = re.search(r'```bash\n(.*?)```', readme, re.S).group(1)  # the first one
    commands = [line.split('#')[0].strip() for line in block.splitlines() if line.strip()]
    assert commands == ['make demo', 'make test'], commands
    ci = [line.strip() for line in (REPO_ROOT / '.ci' / 'run').read_text().splitlines()
          if line.strip() and not line.lstrip().startswith(('#', 'set ', 'cd '))]
    assert ci == ['make test'], ci
    makefile = (REPO_ROOT / 'Makefile').read_text()
    for target in ('demo', 'test'):
        recipe = re.search(rf'^{target}:.*\n((?:\t.*\n)+)', makefile, re.M)
        assert recipe, f'Makefile has no {target} target'
        assert 'venv' in recipe.group(0).splitlines()[0], f'{target} must create .venv first'
    demo = re.search(r'^demo:.*\n((?:\t.*\n)+)', makefile, re.M).group(1)
    # The mission demo (shipped quadrotor student: export, in process, HIL, bag replay)
    # first, then the color maze's headline table.
    assert 'bench/mission_demo.py' in demo and 'bench/color_maze.py' in demo
    assert demo.index('bench/mission_demo.py') < demo.index('bench/color_maze.py')
    assert (REPO_ROOT / 'models' / 'quadrotor_sitt' / 'config.yaml').is_file()


def test_packed_runtime_runs_the_node_without_the_venv(tmp_path, ros_env):
    """bench/pack_ros_runtime.py: the unpacked interpreter finds ROS, ONNX Runtime and the
    node's code on its own (no venv, no torch), and its policy_node launcher starts."""
    tarball, root = tmp_path / 'rt.tar', tmp_path / 'rt'
    proc = _run([sys.executable, str(REPO_ROOT / 'bench' / 'pack_ros_runtime.py'),
                 '--out', str(tarball), '--prefix', str(root)], dict(os.environ), timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    root.mkdir()
    subprocess.run(['tar', '-xf', str(tarball), '-C', str(root)], check=True)
    env = {k: v for k, v in ros_env.items() if k.startswith(('ROS_', 'RMW_', 'FASTDDS_'))}
    env.update(PATH='/usr/bin:/bin', HOME=str(tmp_path), LD_LIBRARY_PATH=str(root / 'lib'),
               PYTHONPATH=os.pathsep.join(str(SRC / p) for p in PACKAGES))
    code = ('import sys, rclpy, onnxruntime, sitt_policy_node.node; rclpy.init(); '
            "n = rclpy.create_node('packed'); n.destroy_node(); rclpy.shutdown(); "
            "print(sys.prefix, 'torch' in sys.modules, rclpy.__file__)")
    proc = _run([str(root / 'bin' / 'python3.11'), '-c', code], env)
    assert proc.returncode == 0, proc.stderr
    prefix, has_torch, rclpy_file = proc.stdout.split()
    assert (prefix, has_torch) == (str(root), 'False')
    assert rclpy_file.startswith(str(root))
    proc = _run([str(root / 'bin' / 'policy_node')], env)
    assert proc.returncode != 0 and 'no model_path given' in proc.stderr, proc.stderr
