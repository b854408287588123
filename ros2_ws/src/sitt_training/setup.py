from glob import glob

from setuptools import find_packages, setup

PACKAGE = 'sitt_training'

setup(
    name=PACKAGE,
    version='0.1.0',
    packages=find_packages(exclude=['test', 'test.*']),
    data_files=[
        # ament index marker + manifest: what makes `ros2 pkg` / ament_index find us
        ('share/ament_index/resource_index/packages', ['resource/' + PACKAGE]),
        ('share/' + PACKAGE, ['package.xml']),
        # presets; glob() returns [] while config/ is empty or missing, which is fine
        ('share/' + PACKAGE + '/config', sorted(glob('config/*.yaml'))),
    ],
    # Runtime deps are pinned in the top-level requirements.txt (torch needs a
    # specific CPU wheel); keep pip from resolving anything here.
    install_requires=['setuptools'],
    zip_safe=True,
    description='Teacher-student RL training, evaluation and ONNX export',
    license='Apache-2.0',
    entry_points={
        'console_scripts': [
            'sitt-train = sitt_training.cli:train_main',
            'sitt-eval = sitt_training.cli:eval_main',
            'sitt-export = sitt_training.export:export_main',
            'sitt-bench = sitt_training.matrix:main',
            # ROS-style name for `ros2 run sitt_training train`
            'train = sitt_training.cli:train_main',
        ],
    },
)
