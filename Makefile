SHELL := /bin/bash
.DEFAULT_GOAL := test

VENV := .venv
PY := $(VENV)/bin/python
PKGS := ros2_ws/src/sitt_training ros2_ws/src/sitt_policy_node ros2_ws/src/sitt_sim_bridge
STAMP := $(VENV)/.installed

# Keep DDS traffic on this machine (docs: PLATFORM.md). tests/conftest.py sets
# the same and picks a per-run ROS_DOMAIN_ID; these cover `make demo` too.
export ROS_AUTOMATIC_DISCOVERY_RANGE := LOCALHOST
export FASTDDS_DEFAULT_PROFILES_FILE := $(CURDIR)/config/fastdds_localhost.xml
export RMW_IMPLEMENTATION := rmw_fastrtps_cpp

.PHONY: venv test lint demo clean

venv: $(STAMP)

# Re-runs only when the pins or a package's setup changes. The workspace
# packages go in editable and without deps: everything they need is pinned in
# requirements.txt. No build isolation: setuptools is pinned in the venv, and
# an isolated build env would need the index on every run.
$(STAMP): requirements.txt $(foreach p,$(PKGS),$(p)/setup.py $(p)/setup.cfg)
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -r requirements.txt
	$(PY) -m pip install --no-deps --no-build-isolation $(addprefix -e ,$(PKGS))
	touch $@

lint: venv
	$(VENV)/bin/ruff check .

test: venv
	$(VENV)/bin/ruff check .
	$(PY) -m pytest -q tests

# The shipped quadrotor student end to end (ONNX export, in-process and HIL evaluation
# over DDS, bag replay), then SITT and the baselines trained on the color maze.
demo: venv
	$(PY) bench/mission_demo.py --out runs/demo_mission
	$(PY) bench/color_maze.py --quick --out runs/demo_color_maze

clean:
	rm -rf build install log .pytest_cache .ruff_cache
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +
	find ros2_ws/src -maxdepth 2 -name '*.egg-info' -type d -prune -exec rm -rf {} +
