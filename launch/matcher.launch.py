"""Launch the glue_ros matcher node.

    ros2 launch glue_ros matcher.launch.py mode:=stereo namespace:=front \
        left_image:=/camera/left/image_rect right_image:=/camera/right/image_rect

Arguments: mode, config (a parameters YAML), namespace, use_sim_time, and remaps for the image
and matches topics.
"""
import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node
from launch_ros.parameter_descriptions import ParameterValue


def generate_launch_description():
    """Node with a parameters file, the mode and sim-time overrides, and topic remaps."""
    default_config = os.path.join(get_package_share_directory('glue_ros'), 'config',
                                  'matcher.yaml')
    args = [
        DeclareLaunchArgument('mode', default_value='sequential',
                              description="'sequential' or 'stereo'"),
        DeclareLaunchArgument('config', default_value=default_config,
                              description='parameters YAML file'),
        DeclareLaunchArgument('namespace', default_value='',
                              description='namespace of the node and its topics'),
        DeclareLaunchArgument('use_sim_time', default_value='false',
                              description='run from /clock (bag replay)'),
        DeclareLaunchArgument('image', default_value='image',
                              description='sequential mode input topic'),
        DeclareLaunchArgument('left_image', default_value='left/image_rect',
                              description='stereo mode left input topic'),
        DeclareLaunchArgument('right_image', default_value='right/image_rect',
                              description='stereo mode right input topic'),
        DeclareLaunchArgument('matches', default_value='matches',
                              description='output topic of glue_ros/Matches'),
        DeclareLaunchArgument('log_level', default_value='info'),
    ]
    node = Node(
        package='glue_ros',
        executable='matcher_node',
        name='glue_ros_matcher',
        namespace=LaunchConfiguration('namespace'),
        output='screen',
        emulate_tty=True,
        parameters=[
            LaunchConfiguration('config'),
            {'mode': LaunchConfiguration('mode'),
             'use_sim_time': ParameterValue(LaunchConfiguration('use_sim_time'), value_type=bool)},
        ],
        remappings=[
            ('image', LaunchConfiguration('image')),
            ('image/compressed', [LaunchConfiguration('image'), '/compressed']),
            ('left/image_rect', LaunchConfiguration('left_image')),
            ('right/image_rect', LaunchConfiguration('right_image')),
            ('matches', LaunchConfiguration('matches')),
        ],
        arguments=['--ros-args', '--log-level', LaunchConfiguration('log_level')],
    )
    return LaunchDescription(args + [node])
