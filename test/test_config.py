"""The shipped parameter files name every node parameter, with the node's defaults."""
from pathlib import Path

import pytest
import yaml

from ros_helpers import require_ros

require_ros()

from glue_ros.ros.matcher_node import PARAMETERS  # noqa: E402

CONFIG = Path(__file__).resolve().parents[1] / 'config'


def parameters(name):
    data = yaml.safe_load((CONFIG / name).read_text())
    (node,) = data.values()
    return node['ros__parameters']


def test_matcher_yaml_lists_every_parameter_with_its_default():
    values = parameters('matcher.yaml')
    assert set(values) == set(PARAMETERS)
    for name, (default, _) in PARAMETERS.items():
        assert values[name] == default, name


@pytest.mark.parametrize('name', ['stereo.yaml', 'jetson_coarse_loftr.yaml'])
def test_presets_set_only_known_parameters(name):
    values = parameters(name)
    assert set(values) <= set(PARAMETERS)
    for key, value in values.items():
        assert type(value) is type(PARAMETERS[key][0]) or (
            isinstance(value, (int, float)) and isinstance(PARAMETERS[key][0], float)), key
