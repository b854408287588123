from setuptools import find_packages, setup

PACKAGE = 'sitt_sim_bridge'

setup(
    name=PACKAGE,
    version='0.1.0',
    packages=find_packages(exclude=['test', 'test.*']),
    data_files=[
        ('share/ament_index/resource_index/packages', ['resource/' + PACKAGE]),
        ('share/' + PACKAGE, ['package.xml']),
    ],
    # rclpy and sitt_training come from requirements.txt / the workspace.
    install_requires=['setuptools'],
    zip_safe=True,
    description='The sitt_training tasks over ROS topics: sim bridge, HIL evaluation',
    license='Apache-2.0',
    entry_points={
        'console_scripts': [
            'sim_bridge = sitt_sim_bridge.bridge:main',
            'sitt-hil = sitt_sim_bridge.hil:main',
            'sitt-replay = sitt_sim_bridge.replay:main',
        ],
    },
)
