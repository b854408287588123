from setuptools import find_packages, setup

PACKAGE = 'sitt_policy_node'

setup(
    name=PACKAGE,
    version='0.1.0',
    packages=find_packages(exclude=['test', 'test.*']),
    data_files=[
        ('share/ament_index/resource_index/packages', ['resource/' + PACKAGE]),
        ('share/' + PACKAGE, ['package.xml']),
        ('share/' + PACKAGE + '/config', ['config/policy_node.yaml']),
    ],
    # rclpy/onnxruntime/numpy come from requirements.txt (or a ROS install).
    install_requires=['setuptools'],
    zip_safe=True,
    description='Runs the exported student ONNX policy on ROS topics',
    license='Apache-2.0',
    entry_points={
        'console_scripts': [
            'policy_node = sitt_policy_node.node:main',
        ],
    },
)
