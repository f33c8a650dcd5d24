"""The settings API: the node's parameters, the CLI flags and the parameter files.

The table itself (names, defaults, descriptions, choices, ranges, live or not) and the one
validation function live in :mod:`glue_ros.core.schema`, where the config classes read their
defaults. Here the table becomes what users see: argparse flags (``--max-keypoints``, with the
schema's default and description), the MatcherConfig and FrontendConfig of a set of values,
and the ``config/*.yaml`` files (:func:`parameters_yaml`; a test checks the shipped ones). The
ROS layer turns the same table into parameter descriptors. One place to add a setting.
"""

from __future__ import annotations

import argparse
import textwrap
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from glue_ros.core import schema
from glue_ros.core.schema import SETTINGS, Setting, default
from glue_ros.frontend.frontend import FrontendConfig
from glue_ros.matcher import MatcherConfig


def defaults() -> dict[str, Any]:
    """Every setting at its default."""
    return schema.defaults()


def validate(values: Mapping[str, Any]) -> None:
    """Raise ValueError naming the first bad value, the cross-setting rules included."""
    schema.check(values)


def matcher_config(values: Mapping[str, Any]) -> MatcherConfig:
    """The MatcherConfig of a full set of values ('' files and -1 threshold: the defaults)."""
    return MatcherConfig(
        matcher=values['matcher'],
        features=values['features'],
        max_keypoints=values['max_keypoints'],
        weights=values['weights'] or None,
        feature_weights=values['feature_weights'] or None,
        device=values['device'],
        depth_confidence=float(values['depth_confidence']),
        width_confidence=float(values['width_confidence']),
        match_threshold=None if values['match_threshold'] < 0 else values['match_threshold'],
        backend=values['backend'],
        precision=values['precision'],
        input_size=tuple(values['input_size']),
        engine_cache_dir=values['engine_cache_dir'] or None,
    ).validate()


def frontend_config(values: Mapping[str, Any]) -> FrontendConfig:
    """The FrontendConfig of a full set of values."""
    return FrontendConfig(
        mode=values['mode'],
        geometric_check=values['geometric_check'],
        ransac_threshold=float(values['ransac_threshold']),
        reference=values['reference'],
        keyframe_min_matches=values['keyframe_min_matches'],
        track_max_age=values['track_max_age'],
        max_tracks=values['max_tracks'],
        min_track_distance=float(values['min_track_distance']),
        max_epipolar_error=float(values['max_epipolar_error']),
        tracking=values['tracking'],
        flow_max_frames=values['flow_max_frames'],
        flow_min_share=float(values['flow_min_share']),
        flow_back_threshold=float(values['flow_back_threshold']),
        track_stereo_left=values['mode'] == 'stereo' and values['publish_vins_features'],
    ).validate()


# -- command-line flags -------------------------------------------------------------------
MATCHER_FLAGS = tuple(n for n, s in SETTINGS.items() if s.group == 'matcher')
VERIFY_FLAGS = ('geometric_check', 'ransac_threshold')
TRACK_FLAGS = (
    'reference',
    'keyframe_min_matches',
    'track_max_age',
    'max_tracks',
    'min_track_distance',
    'tracking',
    'flow_max_frames',
    'flow_min_share',
    'flow_back_threshold',
)


# Older spellings of some flags, still accepted (argparse aliases of the schema's flag).
ALIASES = {
    'max_keypoints': ('--keypoints', '--num-keypoints'),
    'engine_cache_dir': ('--cache-dir',),
    'vins_velocity_units': ('--vins-velocity',),
}
METAVARS = {'input_size': ('W', 'H'), 'max_keypoints': 'N'}


def flag(name: str) -> str:
    """The command-line flag of a setting: its name with dashes."""
    return '--' + name.replace('_', '-')


def add_arguments(
    parser: argparse.ArgumentParser,
    names: Iterable[str],
    choices: Mapping[str, Sequence[Any]] | None = None,
) -> None:
    """A --flag per setting, with its type, default, choices and description.

    `choices` narrows a setting's choices for one tool (e.g. precisions an export supports).
    The ALIASES of a flag are accepted too.
    """
    for name in names:
        s = SETTINGS[name]
        flags = (flag(name), *ALIASES.get(name, ()))
        help_text = s.description
        if len(flags) > 1:
            help_text += f' ({", ".join(flags[1:])}: older spelling)'
        kwargs: dict[str, Any] = {
            'default': default(name),
            'help': help_text.replace('%', '%%'),
            'dest': name,
        }
        if name in METAVARS:
            kwargs['metavar'] = METAVARS[name]
        if s.kind is bool:
            parser.add_argument(*flags, action=argparse.BooleanOptionalAction, **kwargs)
            continue
        if s.kind is list:
            kwargs.update(type=type(s.default[0]), nargs=len(s.default))
        else:
            kwargs['type'] = s.kind
        if s.choices:
            kwargs['choices'] = (choices or {}).get(name, s.choices)
        parser.add_argument(*flags, **kwargs)


def values_from_args(
    args: argparse.Namespace, names: Iterable[str], **extra: Any
) -> dict[str, Any]:
    """The full set of values: the flags `names` (where parsed) and `extra` over the defaults.

    ValueError names a bad one.
    """
    values = defaults()
    values.update({name: getattr(args, name) for name in names if hasattr(args, name)})
    values.update(extra)
    values['input_size'] = list(values['input_size'])
    validate(values)
    return values


# -- parameter files -----------------------------------------------------------------------
NODE_KEY = '/**/glue_ros_matcher:  # any namespace'


def _yaml_value(value: object) -> str:
    if isinstance(value, bool):
        return 'true' if value else 'false'
    if isinstance(value, list):
        return '[' + ', '.join(map(_yaml_value, value)) + ']'
    if isinstance(value, str):
        import yaml

        plain = value and value[0] not in '~' and yaml.safe_load(value) == value
        return value if plain else "'" + value.replace("'", "''") + "'"
    return repr(value)


def _sentence(text: str) -> str:
    first = text.split()[0]
    return (text if '_' in first else text[0].upper() + text[1:]) + '.'


def parameters_yaml(values: Mapping[str, Any], header: str = '') -> str:
    """A node parameters file of `values`, each under its schema description, live ones marked.

    `header`: the comment lines above the node key. The shipped config/*.yaml are made by this
    (``python -m glue_ros.settings config/*.yaml`` rewrites them from their own values), so
    their comments are the schema's descriptions.
    """
    lines = [line for line in header.splitlines() if line.strip()]
    lines += [NODE_KEY, '  ros__parameters:']
    for name, setting in SETTINGS.items():
        if name not in values:
            continue
        lines += textwrap.wrap(
            _sentence(setting.description),
            width=99,
            initial_indent='    # ',
            subsequent_indent='    # ',
            break_on_hyphens=False,
        )
        lines.append(
            f'    {name}: {_yaml_value(values[name])}' + ('  # live' if setting.live else '')
        )
    return '\n'.join(lines) + '\n'


def read_parameters_file(text: str) -> tuple[str, dict[str, Any]]:
    """(header, values) of a parameters file: its leading comment lines, its parameters."""
    import yaml

    header: list[str] = []
    for line in text.splitlines():
        if not line.startswith('#'):
            break
        header.append(line)
    data = yaml.safe_load(text)
    (node,) = data.values()
    return '\n'.join(header), dict(node['ros__parameters'])


def main(argv: Sequence[str] | None = None) -> int:
    """Rewrite parameters files from their own values with the schema's comments."""
    import sys
    from pathlib import Path

    for path in map(Path, argv if argv is not None else sys.argv[1:]):
        header, values = read_parameters_file(path.read_text())
        unknown = sorted(set(values) - set(SETTINGS))
        if unknown:
            raise SystemExit(f'{path}: unknown parameters {unknown}')
        path.write_text(parameters_yaml(values, header))
    return 0


__all__ = [
    'Setting',
    'SETTINGS',
    'default',
    'defaults',
    'validate',
    'matcher_config',
    'frontend_config',
    'add_arguments',
    'flag',
    'values_from_args',
    'ALIASES',
    'parameters_yaml',
    'read_parameters_file',
    'MATCHER_FLAGS',
    'VERIFY_FLAGS',
    'TRACK_FLAGS',
]


if __name__ == '__main__':
    raise SystemExit(main())
