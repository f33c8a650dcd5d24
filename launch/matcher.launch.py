"""Launch the glue_ros matcher node.

    ros2 launch glue_ros matcher.launch.py mode:=stereo namespace:=front \
        left_image:=/camera/left/image_rect right_image:=/camera/right/image_rect

Arguments: mode (overrides the config file's when given), config (a parameters YAML whose
section is keyed `/**/glue_ros_matcher`, so it applies in any namespace), namespace,
use_sim_time, autostart (the managed node configures and activates itself; false: a lifecycle
manager drives it), and remaps for the image, camera_info and matches topics. CameraInfo is
heard beside its image (`image:=/cam/image_raw` -> `/cam/camera_info`) unless given.
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from launch import LaunchContext, LaunchDescription


def generate_launch_description() -> LaunchDescription:
    """Node with a parameters file, the mode and sim-time overrides, and topic remaps."""
    default_config = os.path.join(
        get_package_share_directory('glue_ros'), 'config', 'matcher.yaml'
    )
    args = [
        DeclareLaunchArgument(
            'mode', default_value='', description="'sequential' or 'stereo'; empty: the config's"
        ),
        DeclareLaunchArgument(
            'config', default_value=default_config, description='parameters YAML file'
        ),
        DeclareLaunchArgument(
            'namespace', default_value='', description='namespace of the node and its topics'
        ),
        DeclareLaunchArgument(
            'use_sim_time', default_value='false', description='run from /clock (bag replay)'
        ),
        DeclareLaunchArgument(
            'autostart',
            default_value='true',
            description='configure and activate the lifecycle node at start; '
            'false: leave it unconfigured for a lifecycle manager',
        ),
        DeclareLaunchArgument(
            'image', default_value='image', description='sequential mode input topic'
        ),
        DeclareLaunchArgument(
            'left_image',
            default_value='left/image_rect',
            description='stereo mode left input topic',
        ),
        DeclareLaunchArgument(
            'right_image',
            default_value='right/image_rect',
            description='stereo mode right input topic',
        ),
        DeclareLaunchArgument(
            'camera_info',
            default_value='',
            description='sequential mode CameraInfo topic; empty: beside '
            'the image, <image namespace>/camera_info',
        ),
        DeclareLaunchArgument(
            'left_camera_info',
            default_value='',
            description='stereo mode left CameraInfo topic; empty: beside the left image',
        ),
        DeclareLaunchArgument(
            'right_camera_info',
            default_value='',
            description='stereo mode right CameraInfo topic; empty: beside the right image',
        ),
        DeclareLaunchArgument(
            'matches', default_value='matches', description='output topic of glue_ros/Matches'
        ),
        DeclareLaunchArgument('log_level', default_value='info'),
    ]
    return LaunchDescription(args + [OpaqueFunction(function=matcher_node)])


def matcher_node(context: LaunchContext) -> list[Node]:
    """The node, with `mode` passed on only when it was given."""

    def arg(name: str) -> str:
        return LaunchConfiguration(name).perform(context)

    def flag(name: str) -> bool:
        return arg(name).lower() in ('true', '1', 'yes')

    overrides = {'use_sim_time': flag('use_sim_time'), 'autostart': flag('autostart')}
    if arg('mode'):
        overrides['mode'] = arg('mode')
    # CameraInfo follows its image (the node applies image_transport's rule) unless given.
    infos = [
        (name, arg(argument))
        for name, argument in (
            ('camera_info', 'camera_info'),
            ('left/camera_info', 'left_camera_info'),
            ('right/camera_info', 'right_camera_info'),
        )
        if arg(argument)
    ]
    return [
        Node(
            package='glue_ros',
            executable='matcher_node',
            name='glue_ros_matcher',
            namespace=arg('namespace'),
            output='screen',
            emulate_tty=True,
            parameters=[arg('config'), overrides],
            remappings=[
                ('image', arg('image')),
                ('image/compressed', arg('image') + '/compressed'),
                ('left/image_rect', arg('left_image')),
                ('right/image_rect', arg('right_image')),
                ('matches', arg('matches')),
                *infos,
            ],
            arguments=['--ros-args', '--log-level', arg('log_level')],
        )
    ]
