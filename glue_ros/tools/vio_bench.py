"""``glue-ros-bench --vio``: the VIO evaluation (glue_ros.evaluation.vio) with a preset.

A preset is a node parameter file (``--params-file`` form, ``<node>: ros__parameters: {...}``,
or a flat mapping of parameters); it is checked and mapped by the one settings schema, so the
learned and hybrid pipelines run exactly as the node would with that file.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import yaml

from glue_ros import settings
from glue_ros.evaluation import vio, vio_report
from glue_ros.frontend.frontend import FrontendConfig
from glue_ros.matcher import MatcherConfig

# The VIO preset of this source tree, used when no --vio-config is given and it exists (else
# the installed package's).
DEFAULT_PRESET = Path(__file__).resolve().parents[2] / 'config' / 'vio.yaml'


def load_parameters(path: str | Path) -> dict:
    """The parameters of a parameter file (its one node's ros__parameters, or the mapping)."""
    data = yaml.safe_load(Path(path).read_text()) or {}
    if not isinstance(data, dict):
        raise ValueError(f'{path}: not a mapping of parameters')
    nodes = [v for v in data.values() if isinstance(v, dict) and 'ros__parameters' in v]
    if len(nodes) > 1:
        raise ValueError(f'{path}: parameters of {len(nodes)} nodes; expected one')
    values = dict(nodes[0]['ros__parameters']) if nodes else dict(data)
    unknown = sorted(set(values) - set(settings.SETTINGS))
    if unknown:
        raise ValueError(f'{path}: unknown parameters {", ".join(unknown)}')
    return values


def configs(values: dict | None = None) -> tuple[MatcherConfig, FrontendConfig]:
    """(MatcherConfig, FrontendConfig) of parameter values over the node's defaults."""
    full = {**settings.defaults(), **(values or {})}
    if 'input_size' in full:
        full['input_size'] = list(full['input_size'])
    settings.validate(full)
    return settings.matcher_config(full), settings.frontend_config(full)


def preset_path(path: str | Path | None) -> Path | None:
    """The preset: `path`, else config/vio.yaml of the tree or the install, else None."""
    if path is not None:
        return Path(path)
    candidates = [DEFAULT_PRESET]
    try:  # optional: the ament index exists only where ROS is
        from ament_index_python.packages import get_package_share_directory

        candidates.append(Path(get_package_share_directory('glue_ros')) / 'config' / 'vio.yaml')
    except (ImportError, LookupError):  # no ament index, or not installed: the tree only
        pass
    return next((c for c in candidates if c.is_file()), None)


def run(args: argparse.Namespace) -> dict:
    """Run the evaluation as the bench's flags say; print, plot, and return its report."""
    path = preset_path(args.vio_config)
    values = load_parameters(path) if path is not None else {}
    matcher_config, frontend_config = configs(values)
    names = args.vio_pipelines.split(',') if args.vio_pipelines else None
    report = vio.evaluate(
        names,
        matcher_config=matcher_config,
        frontend_config=frontend_config,
        threads=args.threads,
        camera_frames=args.vio_frames,
        hard_frames=max(args.vio_frames // 2, 12),
    )
    report['preset'] = {'path': None if path is None else str(path), 'parameters': values}
    vio_report.print_report(report)
    print(f'learned/hybrid settings: {"node defaults" if path is None else path}')
    plot = args.plot.with_name('vio.png')
    plot.parent.mkdir(parents=True, exist_ok=True)
    vio_report.plot(report, plot)
    print(f'plot: {plot}')
    return report


__all__ = ['load_parameters', 'configs', 'preset_path', 'run', 'DEFAULT_PRESET']
