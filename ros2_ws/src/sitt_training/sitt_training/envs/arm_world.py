"""The drawer scene of the arm task: one pybullet world per environment.

A Franka Panda (``pybullet_data/franka_panda``) stands with a fixed base at the origin of
the world frame, which is the robot's base frame ``panda_link0`` (x forward, z up), on a
pedestal: the floor lies ``PEDESTAL_HEIGHT`` below (the SITT paper raised the arm by
0.4 m to make it occlude the camera more). In front of it stands a brown cabinet built
from boxes (pybullet ships none): a carcass and one top drawer on a prismatic joint with
``DRAWER_TRAVEL`` of travel and a red bar handle, whose height on the drawer front is
drawn per episode. Nothing else has a handle or a knob.

Speed choices (measured, see PLATFORM.md):

* Visual meshes: the stock Panda visual meshes have ~100k triangles and the TinyRenderer
  draws them at ~50 images/s; the URDF is copied with its visual meshes pointed at the
  collision meshes (~3.5k triangles), ~20x faster, and the arm looks the same at 64x64.
* One pybullet client per environment (``p.DIRECT``), not several robots in one client.
  Speed is about the same either way: physics is ~80% of a step and costs the same per
  robot, and the Python calls per environment (motor targets, joint states) are the same;
  one ``stepSimulation`` per client instead of one per batch costs a few microseconds.
  What decides it: a world holds one robot, so an episode depends only on its own seed and
  actions (not on the batch size or on neighbours), and a reset restores the saved empty
  scene (``restoreState``, and every collision pair dropped): resets are exactly
  reproducible and checkpoints restore bit for bit (``saveBullet``). A shared
  world could only teleport one robot back, keeping the world's caches. The price is
  memory: an empty DIRECT client takes ~28 MB, so ~31 MB per environment.
"""

from __future__ import annotations

import atexit
import math
import os
import shutil
import tempfile
import xml.etree.ElementTree as ET
from types import ModuleType

import numpy as np

# --------------------------------------------------------------------------- robot
ARM_JOINT_NAMES = tuple(f"panda_joint{i}" for i in range(1, 8))
FINGER_JOINT_NAMES = ("panda_finger_joint1", "panda_finger_joint2")
JOINT_NAMES = ARM_JOINT_NAMES + FINGER_JOINT_NAMES  # what sensor_msgs/JointState carries
# pybullet joint (= link) indices in the generated URDF (lowpoly_panda_urdf)
ARM_JOINTS = (0, 1, 2, 3, 4, 5, 6)
FINGER_JOINTS = (7, 8)
ROBOT_JOINTS = ARM_JOINTS + FINGER_JOINTS
GRASP_LINK = 9  # panda_grasptarget: between the finger pads, 0.105 m ahead of the hand
LEFT_FINGER_LINK, RIGHT_FINGER_LINK = FINGER_JOINTS
FLANGE_Z = 0.107  # m, panda_link7 to the flange (panda_link8), where the hand sits
HAND_YAW = -math.pi / 4  # the hand's turn about the flange axis
# Limits from panda.urdf (rad, and m for the fingers).
JOINT_LOWER = np.array([-2.9671, -1.8326, -2.9671, -3.1416, -2.9671, -0.0873, -2.9671,
                        0.0, 0.0])
JOINT_UPPER = np.array([2.9671, 1.8326, 2.9671, 0.0, 2.9671, 3.8223, 2.9671, 0.04, 0.04])
# Motor force limits: the URDF's efforts (N m for the arm, N per finger).
JOINT_FORCE = np.array([87.0, 87.0, 87.0, 87.0, 12.0, 12.0, 12.0, 20.0, 20.0])
FINGER_OPEN = 0.04  # m per finger

PEDESTAL_HEIGHT = 0.3  # m, floor at z = -PEDESTAL_HEIGHT
# Episode start: the hand pointing forward, above and behind the handle, fingers open.
START_JOINTS = np.array([0.0, -0.9, 0.0, -2.7, 0.0, 2.5, -0.785, FINGER_OPEN, FINGER_OPEN])
START_NOISE = 0.1  # rad, uniform +- on each arm joint

# ------------------------------------------------------------------------- cabinet
# Cabinet frame: origin on the floor below the carcass centre, x out of the drawer front.
CARCASS_SIZE = np.array([0.45, 0.5, 0.8])  # m: depth, width, height
DRAWER_TRAVEL = 0.4  # m
DRAWER_FRONT = np.array([0.02, 0.46, 0.18])  # m: thickness, width, height of the front
DRAWER_DEPTH = 0.42  # m, drawer box behind the front
# kg. The drawer's moving mass (1.55 kg) sits mostly in the handle: on its locked joint a
# light handle (0.05 kg) between the drawer and a gripper is a mass ratio the 10 solver
# iterations do not resolve, and a trained policy's yank dragged it 2-4 cm down the front
# (measured); at 1.0 kg it stays within a few millimetres.
DRAWER_MASS = 0.55
HANDLE_MASS = 1.0
DRAWER_FRICTION = 3.0  # N, dry friction of the slide (a velocity motor with this force)
# N s/m, viscous damping of the slide. Without it a drawer flicked at 1.9 m/s (what trained
# policies did) coasted the full 0.4 m; with it, 0.10 m, so the arm has to pull it open.
DRAWER_DAMPING = 20.0
DRAWER_TOP_GAP = 0.02  # m between the drawer front's top and the carcass top
HANDLE_SIZE = np.array([0.02, 0.16, 0.02])  # m: bar depth, length, height
HANDLE_STANDOFF = 0.05  # m, drawer front face to the bar's centre
HANDLE_POST_Y = 0.07  # m, posts at +-this along the bar
# The handle's height on the drawer front is drawn per episode, uniform in
# +-HANDLE_SHIFT_RANGE around the middle (a vertical prismatic joint, locked at each reset).
# With the handle always in the middle, the cabinet's outline told a student where the
# handle was even when the arm hid it (a BC student matched its teacher, 0.98 vs 0.99); now
# only the handle does. The fingers close on the bar from above and below with an 8 cm
# opening, so a grasp aimed at the middle regardless misses the handle when it sits far
# from it: the privileged scripted opener aimed that way opens 0.65 of the test layouts,
# about half of those with the handle in the outer thirds (bench/arm_handle_height.py). Height,
# not a place along the front: shifting the bar sideways moves the cabinet body sideways
# for the same handle position, and the opened drawer then ran into the robot's shoulder in
# the near layouts (measured with the scripted opener).
HANDLE_SHIFT_RANGE = 0.075  # m
HANDLE_SHIFT_LIMIT = (DRAWER_FRONT[2] - HANDLE_SIZE[2]) / 2.0  # m, the bar stays on the front
HANDLE_LOCK_FORCE = 500.0  # N, of the motor holding the handle at its place
# Drawer joint origin (closed) and the handle centre, both in the cabinet frame.
DRAWER_ORIGIN = np.array([CARCASS_SIZE[0] / 2.0, 0.0,
                          CARCASS_SIZE[2] - DRAWER_TOP_GAP - DRAWER_FRONT[2] / 2.0])
HANDLE_IN_DRAWER = np.array([DRAWER_FRONT[0] + HANDLE_STANDOFF, 0.0, 0.0])
HANDLE_CLOSED = DRAWER_ORIGIN + HANDLE_IN_DRAWER  # cabinet frame, drawer closed

CARCASS_RGBA = (0.42, 0.26, 0.13, 1.0)  # brown
DRAWER_RGBA = (0.52, 0.33, 0.17, 1.0)  # a lighter brown, so the drawer's outline shows
HANDLE_RGBA = (0.9, 0.05, 0.05, 1.0)  # red
ARM_RGBA = (0.92, 0.92, 0.92, 1.0)
HAND_RGBA = (0.25, 0.25, 0.28, 1.0)
FLOOR_RGBA = (0.55, 0.57, 0.6, 1.0)
PEDESTAL_RGBA = (0.3, 0.3, 0.33, 1.0)
# Grasps of a 2 cm handle slip at pybullet's default friction (PLATFORM.md): >= 2 held.
GRIP_FRICTION = 2.5
DRAWER_LINK, HANDLE_LINK = 0, 1  # link indices in the cabinet
# Bullet's default collision filters (group, mask): btBroadphaseProxy's DefaultFilter = 1,
# StaticFilter = 2, AllFilter = -1; static colliders ignore other static ones.
DYNAMIC_FILTER = (1, -1)
STATIC_FILTER = (2, -1 ^ 2)

# ------------------------------------------------------------------------- physics
# 120 Hz physics, 4 substeps: 30 Hz control. Same cost per control step as 240 Hz x 4, but
# each step covers twice the time, so an episode needs half the steps; the scripted grasp
# and pull holds at this rate (tests/test_arm_drawer.py). The substeps are four
# stepSimulation calls, not pybullet's numSubSteps: with numSubSteps, motor force limits act
# per substep as if over the whole step (4x too strong; measured on the drawer's friction),
# and the Python round trips it would save cost no measurable time.
SIM_DT = 1.0 / 120.0  # s
SUBSTEPS = 4
CONTROL_DT = SIM_DT * SUBSTEPS
# 10 solver iterations instead of pybullet's 50: roughly a third faster steps (physics is
# ~75% of a step), and the scripted grasp-and-pull still succeeds every time.
SOLVER_ITERATIONS = 10
POSITION_GAIN = 0.3  # of the motors' position error corrected per substep

# ------------------------------------------------------------------------- layout
# The cabinet's yaw is fixed: its drawer faces the robot, turned by 60 degrees (the paper's
# angle) towards the robot's left, where the camera is. The drawer then opens across the
# arm's workspace instead of into the robot, and an arm reaching for the handle passes
# between the camera and the handle. Its position is drawn per episode: the closed drawer's
# handle lies in a box of +-CABINET_RANGE around HANDLE_XY (the SITT paper: +-0.15 m by
# +-0.1 m). The scripted opener succeeds at all corners of the box for centres x = 0.60 to
# 0.65 m but not at 0.55 (the open drawer runs into the robot) or 0.675 (the far handles are
# out of reach): the box sits in the middle of that window.
CABINET_TURN = math.radians(-60.0)
CABINET_YAW = math.pi + CABINET_TURN  # the drawer's pull direction is (cos, sin) of this
HANDLE_XY = np.array([0.625, -0.05])  # m, nominal handle centre (drawer closed), world
CABINET_RANGE = np.array([0.15, 0.1])  # m, +- in world x and y

# ---------------------------------------------------------------------------- camera
# Fixed in the world, above and to the left of the arm's base, like a head camera beside a
# humanoid's right arm: the arm is near the camera and hides large parts of the view in
# many poses (the start pose included). Aim and field of view keep the handle in the image
# at every corner of the layout box, closed and fully open. The task's ``camera_eye`` and
# ``camera_target`` options move it (``arm_drawer.camera_pose``).
IMAGE_SIZE = 64
VFOV_DEG = 50.0
NEAR, FAR = 0.05, 4.0  # m
CAMERA_EYE = np.array([-0.15, 0.45, 0.85])  # m, world (= base) frame
CAMERA_TARGET = np.array([0.7, 0.05, 0.28])  # m, where the optical axis points
CAMERA_UP = np.array([0.0, 0.0, 1.0])
LIGHT_DIRECTION = (0.4, 0.6, 1.0)  # towards the light, world frame


def _pybullet() -> ModuleType:
    # Imported on first use, as in quadrotor_camera: importing the task stays cheap.
    import pybullet

    return pybullet


# ----------------------------------------------------------------------- URDF files
_ASSET_DIR: str | None = None


def asset_dir() -> str:
    """A per-process folder with the generated URDFs (low-poly Panda, cabinet).

    Written at run time, not shipped: the Panda's meshes live in ``pybullet_data`` and the
    URDF must name them by absolute path; the cabinet's sizes are the constants above.
    """
    global _ASSET_DIR
    if _ASSET_DIR is None or not os.path.isdir(_ASSET_DIR):
        folder = tempfile.mkdtemp(prefix="sitt_arm_")
        atexit.register(_remove_assets, folder, os.getpid())
        with open(os.path.join(folder, "panda_lowpoly.urdf"), "w") as f:
            f.write(lowpoly_panda_urdf())
        with open(os.path.join(folder, "cabinet.urdf"), "w") as f:
            f.write(cabinet_urdf())
        _ASSET_DIR = folder
    return _ASSET_DIR


def _remove_assets(folder: str, owner: int) -> None:
    # Forked workers inherit the atexit hook; only the process that wrote the files removes
    # them (a worker's exit would otherwise pull them from under the parent).
    if os.getpid() == owner:
        shutil.rmtree(folder, ignore_errors=True)


def lowpoly_panda_urdf() -> str:
    """pybullet_data's panda.urdf, changed for speed with the same kinematics.

    * Every visual mesh is its collision mesh (~3.5k instead of ~100k triangles).
    * The flange (``panda_link8``) and the hand are merged into ``panda_link7``: fixed links
      cost as much as moving ones in the multibody, and without them a step was ~15%
      faster (measured). The fingers and ``panda_grasptarget`` hang from ``panda_link7``
      with the composed offsets, so every pose is the stock model's (tested).
    * Colours are set here (arm white, hand and fingers dark grey).
    """
    import pybullet_data

    folder = os.path.join(pybullet_data.getDataPath(), "franka_panda")
    with open(os.path.join(folder, "panda.urdf")) as f:
        text = f.read()
    text = text.replace("package://meshes/visual/", "package://meshes/collision/")
    root = ET.fromstring(text.replace("package://", folder + "/"))
    links = {link.get("name"): link for link in root.findall("link")}
    joints = {joint.get("name"): joint for joint in root.findall("joint")}
    link7, hand = links["panda_link7"], links["panda_hand"]
    hand_origin = {"xyz": f"0 0 {FLANGE_Z}", "rpy": f"0 0 {HAND_YAW!r}"}
    for tag in ("visual", "collision"):
        for element in hand.findall(tag):
            for old in element.findall("origin"):
                element.remove(old)
            element.insert(0, ET.Element("origin", hand_origin))
            link7.append(element)
    # One body: the masses add up and the centre of mass moves (the URDF's inertia tensors
    # are placeholders, 0.1 everywhere, and stay so).
    m7, mh = (float(_find(link, "inertial/mass").get("value", "0")) for link in (link7, hand))
    z7, zh = (float(_find(link, "inertial/origin").get("xyz", "0 0 0").split()[2])
              for link in (link7, hand))
    com_z = (m7 * z7 + mh * (FLANGE_Z + zh)) / (m7 + mh)
    _find(link7, "inertial/mass").set("value", repr(m7 + mh))
    _find(link7, "inertial/origin").set("xyz", f"0 0 {com_z!r}")
    for name in ("panda_joint8", "panda_hand_joint"):
        root.remove(joints[name])
    for name in ("panda_link8", "panda_hand"):
        root.remove(links[name])
    for name in ("panda_finger_joint1", "panda_finger_joint2", "panda_grasptarget_hand"):
        joint = joints[name]
        _find(joint, "parent").set("link", "panda_link7")
        origin = _find(joint, "origin")
        z = float(origin.get("xyz", "0 0 0").split()[2]) + FLANGE_Z
        origin.set("xyz", f"0 0 {z!r}")
        origin.set("rpy", f"0 0 {HAND_YAW!r}")  # these joints had no rotation of their own
    for link in root.findall("link"):
        dark = link.get("name") in ("panda_leftfinger", "panda_rightfinger")
        for visual in link.findall("visual"):
            for old in visual.findall("material"):
                visual.remove(old)
            # The hand's visuals on panda_link7 are the ones with a hand mesh.
            mesh = visual.find("geometry/mesh")
            is_hand = mesh is not None and mesh.get("filename", "").endswith("/hand.obj")
            name, rgba = ("hand", HAND_RGBA) if dark or is_hand else ("arm", ARM_RGBA)
            material = ET.SubElement(visual, "material", {"name": name})
            ET.SubElement(material, "color", {"rgba": " ".join(str(v) for v in rgba)})
    return ET.tostring(root, encoding="unicode")


def _find(element: ET.Element, path: str) -> ET.Element:
    found = element.find(path)
    if found is None:
        raise ValueError(f"panda.urdf: {element.get('name')} has no {path}")
    return found


def _box(xyz: np.ndarray | tuple[float, ...], size: np.ndarray | tuple[float, ...],
         rgba: tuple[float, ...] | None, collide: bool = True) -> str:
    origin = f'<origin xyz="{xyz[0]:.4f} {xyz[1]:.4f} {xyz[2]:.4f}"/>'
    geometry = f'<geometry><box size="{size[0]:.4f} {size[1]:.4f} {size[2]:.4f}"/></geometry>'
    out = ""
    if rgba is not None:
        color = " ".join(f"{c:.3f}" for c in rgba)
        out += (f'<visual>{origin}{geometry}<material name="c{color.replace(" ", "_")}">'
                f'<color rgba="{color}"/></material></visual>')
    if collide:
        out += f"<collision>{origin}{geometry}</collision>"
    return out


def _inertial(mass: float, size: float = 0.1) -> str:
    inertia = mass * size * size / 6.0
    return (f'<inertial><mass value="{mass}"/><inertia ixx="{inertia}" iyy="{inertia}" '
            f'izz="{inertia}" ixy="0" ixz="0" iyz="0"/></inertial>')


def cabinet_urdf() -> str:
    """The cabinet: ``carcass`` (base), ``drawer`` (prismatic, +x) and ``handle``
    (prismatic up the front, +z, locked per episode: ``ArmWorld.set_handle_shift``)."""
    d, w, h = CARCASS_SIZE
    t, fw, fh = DRAWER_FRONT
    wall = 0.01
    inner_w, inner_h = fw - 0.04, fh - 0.04
    # The drawer box behind the front: bottom, two sides, back (seen when it is open).
    box_parts = [
        ((-DRAWER_DEPTH / 2, 0.0, -inner_h / 2), (DRAWER_DEPTH, inner_w, wall)),
        ((-DRAWER_DEPTH / 2, inner_w / 2, 0.0), (DRAWER_DEPTH, wall, inner_h)),
        ((-DRAWER_DEPTH / 2, -inner_w / 2, 0.0), (DRAWER_DEPTH, wall, inner_h)),
        ((-DRAWER_DEPTH, 0.0, 0.0), (wall, inner_w, inner_h)),
    ]
    drawer = _box((t / 2, 0.0, 0.0), (t, fw, fh), DRAWER_RGBA)
    drawer += "".join(_box(xyz, size, DRAWER_RGBA) for xyz, size in box_parts)
    hx, hy, hz = HANDLE_SIZE
    post_len = HANDLE_STANDOFF - hx / 2
    handle = _box((0.0, 0.0, 0.0), (hx, hy, hz), HANDLE_RGBA)
    for sign in (-1.0, 1.0):
        handle += _box((-HANDLE_STANDOFF + post_len / 2, sign * HANDLE_POST_Y, 0.0),
                       (post_len, hz, hz), HANDLE_RGBA)
    o = DRAWER_ORIGIN
    return f"""<?xml version="1.0"?>
<robot name="cabinet">
  <link name="carcass">{_inertial(0.0)}{_box((0.0, 0.0, h / 2), (d, w, h), CARCASS_RGBA)}</link>
  <link name="drawer">{_inertial(DRAWER_MASS)}{drawer}</link>
  <link name="handle">{_inertial(HANDLE_MASS)}{handle}</link>
  <joint name="drawer_joint" type="prismatic">
    <parent link="carcass"/><child link="drawer"/>
    <origin xyz="{o[0]:.4f} {o[1]:.4f} {o[2]:.4f}"/><axis xyz="1 0 0"/>
    <limit lower="0" upper="{DRAWER_TRAVEL}" effort="1000" velocity="5"/>
  </joint>
  <joint name="handle_joint" type="prismatic">
    <parent link="drawer"/><child link="handle"/>
    <origin xyz="{HANDLE_IN_DRAWER[0]:.4f} 0 0"/><axis xyz="0 0 1"/>
    <limit lower="{-HANDLE_SHIFT_LIMIT:.4f}" upper="{HANDLE_SHIFT_LIMIT:.4f}" effort="1000"
           velocity="1"/>
  </joint>
</robot>
"""


# ---------------------------------------------------------------------- geometry
def yaw_quaternion(yaw: float) -> tuple[float, float, float, float]:
    return (0.0, 0.0, math.sin(yaw / 2.0), math.cos(yaw / 2.0))


def cabinet_position(handle_xy: np.ndarray, cabinet_yaw: float = CABINET_YAW) -> np.ndarray:
    """Where the cabinet stands ``(n, 2)`` (floor below the carcass centre) so that its
    closed drawer's handle is at ``handle_xy`` ``(n, 2)``."""
    n = drawer_normal(cabinet_yaw)[:2]
    return np.asarray(handle_xy, dtype=np.float64) - HANDLE_CLOSED[0] * n


def handle_position(cabinet_xy: np.ndarray, drawer_q: np.ndarray,
                    handle_shift: np.ndarray | float = 0.0,
                    cabinet_yaw: float = CABINET_YAW) -> np.ndarray:
    """World position ``(n, 3)`` of the handle centre for cabinets at ``cabinet_xy``
    ``(n, 2)`` (floor below the carcass centre) with the drawer out by ``drawer_q`` and
    the handle raised by ``handle_shift`` (m) from the middle of the drawer front."""
    c, s = math.cos(cabinet_yaw), math.sin(cabinet_yaw)
    local_x = HANDLE_CLOSED[0] + np.asarray(drawer_q, dtype=np.float64)
    out = np.empty((len(cabinet_xy), 3))
    out[:, 0] = cabinet_xy[:, 0] + c * local_x - s * HANDLE_CLOSED[1]
    out[:, 1] = cabinet_xy[:, 1] + s * local_x + c * HANDLE_CLOSED[1]
    out[:, 2] = HANDLE_CLOSED[2] - PEDESTAL_HEIGHT + np.asarray(handle_shift, dtype=np.float64)
    return out


def drawer_normal(cabinet_yaw: float = CABINET_YAW) -> np.ndarray:
    """The drawer's pull direction (unit, world), ``(3,)``."""
    return np.array([math.cos(cabinet_yaw), math.sin(cabinet_yaw), 0.0])


def sample_layout(rng: np.random.Generator, handle_shift_range: float = HANDLE_SHIFT_RANGE,
                  start_joints: np.ndarray = START_JOINTS
                  ) -> tuple[np.ndarray, np.ndarray, float]:
    """One episode's cabinet position ``(2,)``, initial joint positions ``(9,)`` (uniform
    noise around ``start_joints``) and the handle's height above the middle of the drawer
    front (m). The shift is drawn last, so a range of 0 gives the layouts of the fixed
    handle bit for bit."""
    if not 0.0 <= handle_shift_range <= HANDLE_SHIFT_LIMIT:
        raise ValueError(f"handle_shift_range must be in [0, {HANDLE_SHIFT_LIMIT:.3f}] m, "
                         f"got {handle_shift_range}")
    handle_xy = HANDLE_XY + rng.uniform(-CABINET_RANGE, CABINET_RANGE)
    joints = np.array(start_joints, dtype=np.float64)
    joints[:7] += rng.uniform(-START_NOISE, START_NOISE, 7)
    joints = np.clip(joints, JOINT_LOWER, JOINT_UPPER)
    shift = float(rng.uniform(-handle_shift_range, handle_shift_range))
    return cabinet_position(handle_xy[None])[0], joints, shift


def look_at_rotation(eye: np.ndarray, target: np.ndarray, up: np.ndarray) -> np.ndarray:
    """Rotation whose columns are the camera's optical axes (x right, y down, z forward,
    REP 103 optical frame) in world coordinates."""
    z = target - eye
    z = z / np.linalg.norm(z)
    x = np.cross(z, up)
    x = x / np.linalg.norm(x)
    y = np.cross(z, x)
    return np.stack([x, y, z], axis=1)


def rotation_to_quaternion(rot: np.ndarray) -> np.ndarray:
    """``(x, y, z, w)`` of a proper rotation matrix."""
    m = rot
    trace = m[0, 0] + m[1, 1] + m[2, 2]
    if trace > 0:
        s = 2.0 * math.sqrt(trace + 1.0)
        q = [(m[2, 1] - m[1, 2]) / s, (m[0, 2] - m[2, 0]) / s, (m[1, 0] - m[0, 1]) / s, s / 4]
    elif m[0, 0] > m[1, 1] and m[0, 0] > m[2, 2]:
        s = 2.0 * math.sqrt(1.0 + m[0, 0] - m[1, 1] - m[2, 2])
        q = [s / 4, (m[0, 1] + m[1, 0]) / s, (m[0, 2] + m[2, 0]) / s, (m[2, 1] - m[1, 2]) / s]
    elif m[1, 1] > m[2, 2]:
        s = 2.0 * math.sqrt(1.0 + m[1, 1] - m[0, 0] - m[2, 2])
        q = [(m[0, 1] + m[1, 0]) / s, s / 4, (m[1, 2] + m[2, 1]) / s, (m[0, 2] - m[2, 0]) / s]
    else:
        s = 2.0 * math.sqrt(1.0 + m[2, 2] - m[0, 0] - m[1, 1])
        q = [(m[0, 2] + m[2, 0]) / s, (m[1, 2] + m[2, 1]) / s, s / 4, (m[1, 0] - m[0, 1]) / s]
    q = np.array(q)
    return q / np.linalg.norm(q) * (1.0 if q[3] >= 0 else -1.0)


ArmReadout = tuple[list[float], list[float], tuple[float, float], tuple[float, ...],
                   tuple[float, ...]]


class ArmWorld:
    """One pybullet client with the Panda and the cabinet; steps, reads and renders."""

    def __init__(self, image_size: int = IMAGE_SIZE, camera_eye: np.ndarray = CAMERA_EYE,
                 camera_target: np.ndarray = CAMERA_TARGET) -> None:
        self._p = p = _pybullet()
        self.image_size = image_size
        self.camera_eye = np.asarray(camera_eye, dtype=np.float64)
        folder = asset_dir()
        self.client = c = p.connect(p.DIRECT)
        p.setGravity(0.0, 0.0, -9.81, physicsClientId=c)
        p.setPhysicsEngineParameter(fixedTimeStep=SIM_DT, numSolverIterations=SOLVER_ITERATIONS,
                                    deterministicOverlappingPairs=1, physicsClientId=c)
        self.robot = p.loadURDF(os.path.join(folder, "panda_lowpoly.urdf"), useFixedBase=True,
                                flags=p.URDF_ENABLE_CACHED_GRAPHICS_SHAPES, physicsClientId=c)
        self.cabinet = p.loadURDF(os.path.join(folder, "cabinet.urdf"),
                                  basePosition=[1.0, 0.0, -PEDESTAL_HEIGHT], useFixedBase=True,
                                  flags=p.URDF_ENABLE_CACHED_GRAPHICS_SHAPES,
                                  physicsClientId=c)
        for link in (LEFT_FINGER_LINK, RIGHT_FINGER_LINK):
            p.changeDynamics(self.robot, link, lateralFriction=GRIP_FRICTION,
                             physicsClientId=c)
        p.changeDynamics(self.cabinet, HANDLE_LINK, lateralFriction=GRIP_FRICTION,
                         physicsClientId=c)
        # Dry friction of the slide: a velocity motor towards zero speed with a small force.
        p.setJointMotorControl2(self.cabinet, DRAWER_LINK, p.VELOCITY_CONTROL,
                                targetVelocity=0.0, force=DRAWER_FRICTION, physicsClientId=c)
        p.changeDynamics(self.cabinet, DRAWER_LINK, jointDamping=DRAWER_DAMPING,
                         physicsClientId=c)
        self._add_floor_and_pedestal()
        self._view = p.computeViewMatrix(self.camera_eye.tolist(),
                                         np.asarray(camera_target, dtype=np.float64).tolist(),
                                         CAMERA_UP.tolist(), physicsClientId=c)
        self._projection = p.computeProjectionMatrixFOV(VFOV_DEG, 1.0, NEAR, FAR,
                                                        physicsClientId=c)
        self._joints = list(ROBOT_JOINTS)
        self._forces = JOINT_FORCE.tolist()
        self._gains = [POSITION_GAIN] * len(ROBOT_JOINTS)
        self._ray_starts = [self.camera_eye.tolist()] * 8
        # The empty scene every episode starts from (body states, contact points).
        self._initial_state = p.saveState(physicsClientId=c)
        # Every collider of the two bodies with pybullet's default collision filter (URDF2Bullet:
        # a fixed base is static; neither URDF names collision groups), re-set at each reset.
        self._colliders = [
            (body, link, *(STATIC_FILTER if link == -1 else DYNAMIC_FILTER))
            for body in (self.robot, self.cabinet)
            for link in range(-1, p.getNumJoints(body, physicsClientId=c))]

    def _add_floor_and_pedestal(self) -> None:
        p, c = self._p, self.client
        floor = p.createVisualShape(p.GEOM_BOX, halfExtents=[2.0, 2.0, 0.005],
                                    visualFramePosition=[0.5, 0.0, -0.005],
                                    rgbaColor=FLOOR_RGBA, physicsClientId=c)
        plane = p.createCollisionShape(p.GEOM_PLANE, physicsClientId=c)
        p.createMultiBody(0.0, plane, floor, basePosition=[0.0, 0.0, -PEDESTAL_HEIGHT],
                          physicsClientId=c)
        half = [0.15, 0.15, PEDESTAL_HEIGHT / 2]
        pedestal = p.createVisualShape(p.GEOM_BOX, halfExtents=half, rgbaColor=PEDESTAL_RGBA,
                                       physicsClientId=c)
        box = p.createCollisionShape(p.GEOM_BOX, halfExtents=half, physicsClientId=c)
        p.createMultiBody(0.0, box, pedestal, basePosition=[0.0, 0.0, -PEDESTAL_HEIGHT / 2],
                          physicsClientId=c)

    # ------------------------------------------------------------------- episodes
    def reset(self, cabinet_xy: np.ndarray, joints: np.ndarray, handle_shift: float = 0.0
              ) -> None:
        """Start an episode: the scene as built, the cabinet moved, its handle raised by
        ``handle_shift`` (m) from the middle of the drawer front, the arm at ``joints`` (9
        values) at rest, the drawer closed."""
        p, c = self._p, self.client
        p.restoreState(self._initial_state, physicsClientId=c)
        p.resetBasePositionAndOrientation(
            self.cabinet, [float(cabinet_xy[0]), float(cabinet_xy[1]), -PEDESTAL_HEIGHT],
            yaw_quaternion(CABINET_YAW), physicsClientId=c)
        self.set_joints(joints)
        self.set_drawer(0.0)
        self.set_handle_shift(handle_shift)
        self._drop_collision_pairs()

    def set_handle_shift(self, shift: float) -> None:
        """Raise the handle ``shift`` (m) from the middle of the drawer front and lock it
        there: both joint limits at ``shift`` and a stiff position motor (the motor halves
        what a student's yank drags the handle: 2.2 against 4.7 mm, measured). Limits and
        motors are not part of a saved state; ``load_bytes`` locks the handle again."""
        p, c = self._p, self.client
        if abs(shift) > HANDLE_SHIFT_LIMIT:
            raise ValueError(f"handle shift {shift} m is off the drawer front "
                             f"(+-{HANDLE_SHIFT_LIMIT:.3f} m)")
        p.resetJointState(self.cabinet, HANDLE_LINK, float(shift), 0.0, physicsClientId=c)
        self._lock_handle(shift)

    def _lock_handle(self, shift: float) -> None:
        p, c = self._p, self.client
        p.changeDynamics(self.cabinet, HANDLE_LINK, jointLowerLimit=float(shift),
                         jointUpperLimit=float(shift), physicsClientId=c)
        p.setJointMotorControl2(self.cabinet, HANDLE_LINK, p.POSITION_CONTROL,
                                targetPosition=float(shift), force=HANDLE_LOCK_FORCE,
                                positionGain=1.0, physicsClientId=c)

    def handle_shift(self) -> float:
        """The handle's height above the middle of the drawer front (m, its joint)."""
        return float(self._p.getJointState(self.cabinet, HANDLE_LINK,
                                           physicsClientId=self.client)[0])

    def _drop_collision_pairs(self) -> None:
        """Start the episode with no broadphase pairs and no contact manifolds, as a fresh
        world does. ``restoreState`` restores contact points but keeps the pairs (and their
        empty manifolds) made since, and the order in which manifolds were made is the order
        the solver visits contacts: some episodes then came out differently after others
        (measured: 8 of 100 episodes of a trained arm student, by up to 0.18 in return).
        Setting a collider's filter, here to the value it already has, rebuilds its
        broadphase proxy (``btCollisionWorld::refreshBroadphaseProxy``), which frees every
        pair it is in."""
        p, c = self._p, self.client
        for body, link, group, mask in self._colliders:
            p.setCollisionFilterGroupMask(body, link, group, mask, physicsClientId=c)

    def set_joints(self, joints: np.ndarray) -> None:
        """Teleport the arm to ``joints`` (9 values) at rest (IK, tests, tools)."""
        p, c = self._p, self.client
        for j, q in zip(ROBOT_JOINTS, joints, strict=True):
            p.resetJointState(self.robot, j, float(q), 0.0, physicsClientId=c)

    def set_drawer(self, opening: float) -> None:
        """Teleport the drawer to ``opening`` (m) at rest (tests, tools)."""
        self._p.resetJointState(self.cabinet, DRAWER_LINK, float(opening), 0.0,
                                physicsClientId=self.client)

    def step(self, targets: np.ndarray) -> None:
        """Hold the 9 joint position ``targets`` for one control step (``SUBSTEPS``)."""
        p, c = self._p, self.client
        p.setJointMotorControlArray(self.robot, self._joints, p.POSITION_CONTROL,
                                    targetPositions=targets.tolist(), forces=self._forces,
                                    positionGains=self._gains, physicsClientId=c)
        for _ in range(SUBSTEPS):
            p.stepSimulation(physicsClientId=c)

    def read(self) -> ArmReadout:
        """Joint positions (9), joint velocities (9), drawer opening and speed, grasp point
        position (3) and its orientation as a row-major 3x3 matrix (9 values)."""
        p, c = self._p, self.client
        states = p.getJointStates(self.robot, self._joints, physicsClientId=c)
        drawer = p.getJointState(self.cabinet, DRAWER_LINK, physicsClientId=c)
        # Forward kinematics from the joints just read: the link poses pybullet keeps from
        # the step lag the last substep by ~2 mm.
        link = p.getLinkState(self.robot, GRASP_LINK, computeForwardKinematics=1,
                              physicsClientId=c)
        return ([s[0] for s in states], [s[1] for s in states], drawer[:2], link[4],
                p.getMatrixFromQuaternion(link[5]))

    def jacobian(self, joints: np.ndarray) -> np.ndarray:
        """``(6, 9)`` Jacobian (linear rows, then angular) of the grasp point at ``joints``."""
        p = self._p
        q = [float(v) for v in joints]
        zero = [0.0] * len(q)
        lin, ang = p.calculateJacobian(self.robot, GRASP_LINK, [0.0, 0.0, 0.0], q, zero, zero,
                                       physicsClientId=self.client)
        return np.vstack([np.asarray(lin), np.asarray(ang)])

    def handle_visible(self, points: list[list[float]]) -> float:
        """The fraction of world ``points`` (on the handle) that the camera sees: rays from
        the camera that first hit the handle. The visual meshes are the collision meshes,
        so this agrees with the image. Points should lie just inside the handle (a ray
        ending on a surface may miss it)."""
        p = self._p
        hits = p.rayTestBatch(self._ray_starts[:len(points)], points,
                              physicsClientId=self.client)
        seen = sum(1 for h in hits if h[0] == self.cabinet and h[1] == HANDLE_LINK)
        return seen / len(points)

    def render(self) -> np.ndarray:
        """The camera image ``(H, W, 3)`` uint8 RGB, row 0 at the top."""
        p = self._p
        size = self.image_size
        rgba = p.getCameraImage(size, size, self._view, self._projection, shadow=0,
                                lightDirection=LIGHT_DIRECTION, renderer=p.ER_TINY_RENDERER,
                                flags=p.ER_NO_SEGMENTATION_MASK, physicsClientId=self.client)[2]
        return np.asarray(rgba, dtype=np.uint8).reshape(size, size, 4)[:, :, :3]

    # ------------------------------------------------------------- checkpoints
    def save_bytes(self) -> bytes:
        """The full physics state (poses, velocities, contact caches) as bytes."""
        p = self._p
        with tempfile.TemporaryDirectory(prefix="sitt_arm_state_") as folder:
            path = os.path.join(folder, "state.bullet")
            p.saveBullet(path, physicsClientId=self.client)
            with open(path, "rb") as f:
                return f.read()

    def load_bytes(self, data: bytes, handle_shift: float) -> None:
        """Restore a ``save_bytes`` state, the handle locked at ``handle_shift`` (m): the
        episode's height, which the caller keeps (a state holds the joint's position, a
        few tenths of a millimetre off under a pull, and not the lock)."""
        p = self._p
        with tempfile.TemporaryDirectory(prefix="sitt_arm_state_") as folder:
            path = os.path.join(folder, "state.bullet")
            with open(path, "wb") as f:
                f.write(data)
            p.restoreState(fileName=path, physicsClientId=self.client)
        self._lock_handle(handle_shift)

    def close(self) -> None:
        client = getattr(self, "client", None)
        if client is not None:
            self.client = None
            try:
                if self._p.isConnected(physicsClientId=client):
                    self._p.disconnect(physicsClientId=client)
            except Exception:  # noqa: BLE001  (already gone, e.g. at interpreter shutdown)
                pass

    def __del__(self) -> None:
        self.close()
