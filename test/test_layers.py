"""The layer rules of the package, checked by reading every module's imports.

Lowest first: core (types, errors, weights, extractor helpers, camera, drawing, image
conversion) -> models (networks) -> backends (runtimes) -> matcher (the matcher API) ->
frontend (extract, match, verify, track) -> evaluation; the ROS layer (ros) and the fixtures
(testing) sit beside the evaluation, the tools on top. Only the ROS layer, the fixtures and the
ROS tools import ROS. docs/design.md draws the same picture.
"""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / 'glue_ros'
# layer -> the glue_ros layers its modules may import (its own included).
ALLOWED = {
    'core': {'core'},
    'models': {'core', 'models'},
    'backends': {'core', 'models', 'backends'},
    'matcher': {'core', 'models', 'backends', 'matcher'},
    'frontend': {'core', 'matcher', 'frontend'},
    'evaluation': {'core', 'models', 'matcher', 'frontend', 'evaluation', 'testing'},
    'settings': {'core', 'matcher', 'frontend', 'settings'},
    'ros': {'core', 'matcher', 'frontend', 'settings', 'ros', 'msg', 'srv'},
    'testing': {'core', 'matcher', 'frontend', 'settings', 'ros', 'msg', 'srv', 'testing'},
    'tools': {
        'core',
        'models',
        'backends',
        'matcher',
        'frontend',
        'settings',
        'evaluation',
        'ros',
        'msg',
        'srv',
        'testing',
        'tools',
    },
}
# Packages of a ROS graph. (cv_bridge is not one: an image library the converter uses where it is
# installed; ament_index_python only finds installed files.)
ROS_PACKAGES = {
    'rclpy',
    'rcl_interfaces',
    'sensor_msgs',
    'std_msgs',
    'builtin_interfaces',
    'rosgraph_msgs',
    'lifecycle_msgs',
    'diagnostic_msgs',
    'launch',
    'launch_ros',
}
# Modules outside the ROS layer that are ROS programs themselves: the process harness, the demo
# and the bag player, and the benchmark's message-cost measurement.
ROS_MODULES = {'testing/harness.py', 'tools/demo.py', 'tools/bag_play.py', 'tools/bench/report.py'}


def layer_of(path: Path) -> str:
    rel = path.relative_to(PACKAGE)
    return rel.parts[0] if len(rel.parts) > 1 else rel.stem


def imported_modules(path: Path):
    """(line, dotted name) of every import in the file, function-local ones included."""
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module == 'glue_ros':
                for alias in node.names:
                    yield node.lineno, f'glue_ros.{alias.name}'
            else:
                yield node.lineno, node.module


MODULES = sorted(
    p
    for p in PACKAGE.rglob('*.py')
    # A layer's __init__.py counts (glue_ros.matcher's holds build_matcher); the package's not.
    if p != PACKAGE / '__init__.py' and not {'msg', 'srv'} & set(p.relative_to(PACKAGE).parts)
)


def test_every_module_has_a_layer():
    unknown = {layer_of(p) for p in MODULES} - set(ALLOWED)
    assert not unknown, f'modules outside the known layers: {unknown}; add them to ALLOWED'


@pytest.mark.parametrize('path', MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_follow_the_layers(path):
    layer = layer_of(path)
    rel = str(path.relative_to(PACKAGE))
    wrong = []
    for line, name in imported_modules(path):
        parts = name.split('.')
        if parts[0] == 'glue_ros' and len(parts) > 1:
            target = parts[1]
            if target not in ALLOWED[layer]:
                wrong.append(f'{rel}:{line} ({layer}) imports {name}')
        elif parts[0] in ROS_PACKAGES and layer != 'ros' and rel not in ROS_MODULES:
            wrong.append(f'{rel}:{line} ({layer}) imports ROS package {name}')
    assert not wrong, '\n'.join(wrong)


def test_the_rules_can_fail(tmp_path):
    """A core module that imports the matcher API breaks the rule (the check is not vacuous)."""
    bad = tmp_path / 'bad.py'
    bad.write_text(
        'import os\nfrom glue_ros.matcher import build_matcher\ndef f():\n    import rclpy\n'
    )
    found = list(imported_modules(bad))
    assert (2, 'glue_ros.matcher') in found and (4, 'rclpy') in found
    assert 'matcher' not in ALLOWED['core']
