"""One schema of every user setting: the node's parameters and the CLI flags are made from it.

Each :class:`Setting` has a name, a default (its type is the parameter's type), a description,
choices or a numeric range, and whether it may change while the node runs (``live``). The ROS
layer turns the schema into parameter descriptors (read-only unless live, ranges, an on-set
check); the tools turn it into argparse flags; a test checks ``config/*.yaml`` against it. One
place to add a setting, so the three never disagree.
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Optional

from glue_ros.frontend.frontend import MODES, REFERENCES, TRACKING, FrontendConfig
from glue_ros.frontend.geometry import CHECKS
from glue_ros.matcher import (BACKENDS, DEVICES, FEATURES, MATCHERS, PRECISIONS,
                              MatcherConfig)


def _confidence(value) -> Optional[str]:
    return None if value == -1 or 0.0 < value <= 1.0 else 'in (0, 1], or -1 to disable'


def _threshold(value) -> Optional[str]:
    return None if value == -1 or 0.0 <= value < 1.0 else 'in [0, 1), or -1 for the default'


def _input_size(value) -> Optional[str]:
    ok = len(value) == 2 and all(v > 0 and v % 16 == 0 for v in value)
    return None if ok else '[width, height], both positive multiples of 16'


@dataclass(frozen=True)
class Setting:
    """One user setting (see the module docstring)."""

    name: str
    default: Any
    description: str
    group: str                      # 'matcher' (MatcherConfig), 'frontend', 'node'
    choices: tuple = ()
    low: Optional[float] = None     # inclusive bounds (a parameter descriptor's range)
    high: Optional[float] = None
    live: bool = False              # may change while the node runs
    check: Optional[Callable[[Any], Optional[str]]] = None   # finer rule: None or 'expected'

    @property
    def kind(self) -> type:
        """bool, int, float, str or list: the parameter type the default gives."""
        return type(self.default)

    def problem(self, value) -> Optional[str]:
        """Why `value` is not acceptable, or None."""
        expected = None
        if self.kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, self.kind) or (self.kind is int and isinstance(value, bool)):
            expected = f'a value of type {self.kind.__name__}'
        elif self.choices and value not in self.choices:
            expected = 'one of ' + ', '.join(map(str, self.choices))
        elif self.low is not None and value < self.low:
            expected = f'>= {self.low}'
        elif self.high is not None and value > self.high:
            expected = f'<= {self.high}'
        elif self.check is not None:
            expected = self.check(value)
        if expected is None:
            return None
        return f"parameter '{self.name}' is {value!r}; expected {expected}"


_M, _F = MatcherConfig(), FrontendConfig()
SETTINGS = {s.name: s for s in (
    # -- matcher ---------------------------------------------------------------------------
    Setting('matcher', _M.matcher, "'lightglue' (sparse features) or 'coarse_loftr' "
            '(detector-free, matches on a 16 px grid)', 'matcher', MATCHERS),
    Setting('features', _M.features, "LightGlue's extractor: 'xfeat', 'superpoint' (users "
            "supply its weights) or 'disk'", 'matcher', FEATURES),
    Setting('max_keypoints', _M.max_keypoints, 'keypoints per image, strongest kept', 'matcher',
            low=1),
    Setting('weights', '', 'matcher weights file; empty: the packaged default', 'matcher'),
    Setting('feature_weights', '', 'extractor weights file; empty: the packaged default '
            '(SuperPoint: required, users supply it)', 'matcher'),
    Setting('device', _M.device, "'cpu' or 'cuda'", 'matcher', DEVICES),
    Setting('depth_confidence', _M.depth_confidence, 'LightGlue early exit: stop once this '
            'share of points is confident; -1 disables (eager torch only)', 'matcher',
            low=-1.0, high=1.0, live=True, check=_confidence),
    Setting('width_confidence', _M.width_confidence, 'LightGlue pruning of unmatchable '
            'points; -1 disables (eager torch only)', 'matcher', low=-1.0, high=1.0, live=True,
            check=_confidence),
    Setting('match_threshold', -1.0, 'minimum match confidence; -1: the model default '
            '(LightGlue 0.1, coarse LoFTR 0.2)', 'matcher', low=-1.0, high=1.0, live=True,
            check=_threshold),
    Setting('backend', _M.backend, "'torch' (eager: early exit and pruning), 'onnxruntime' or "
            "'tensorrt' (exported graph, full depth)", 'matcher', BACKENDS),
    Setting('precision', _M.precision, "'auto' (fp16 on CUDA, bf16 on CPUs with AMX, else "
            "fp32); 'fp32'; 'fp16' (CUDA); 'bf16' (CPU: LightGlue attention in bfloat16)",
            'matcher', PRECISIONS),
    Setting('input_size', list(_M.input_size), 'coarse_loftr network input [width, height], '
            'multiples of 16', 'matcher', check=_input_size),
    Setting('engine_cache_dir', '', 'ONNX exports and TensorRT engines; empty: '
            '~/.cache/glue_ros', 'matcher'),
    # -- front-end -------------------------------------------------------------------------
    Setting('mode', _F.mode, "'sequential': match each frame against a keyframe or the "
            "previous frame; 'stereo': match left/image_rect against right/image_rect",
            'frontend', MODES),
    Setting('reference', _F.reference, "sequential mode: match against a 'keyframe' (held "
            "until too few matches remain: longer tracks) or the 'previous' frame", 'frontend',
            REFERENCES),
    Setting('keyframe_min_matches', _F.keyframe_min_matches, "reference 'keyframe': a new "
            'keyframe is taken below this many verified matches', 'frontend', low=1,
            live=True),
    Setting('geometric_check', _F.geometric_check, "robust model the published matches fit: "
            "'none', 'fundamental', 'essential' (needs camera_info), 'homography', or 'auto' "
            '(essential with camera_info, else fundamental)', 'frontend', CHECKS),
    Setting('ransac_threshold', _F.ransac_threshold, 'inlier threshold of the geometric '
            'check, pixels', 'frontend', low=0.01, high=100.0, live=True),
    Setting('track_max_age', _F.track_max_age, "reference 'previous': frames an unmatched "
            'track stays alive and is looked for again', 'frontend', low=0, live=True),
    Setting('max_tracks', _F.max_tracks, 'feature budget: new tracks start only while fewer are '
            'alive', 'frontend', low=1, live=True),
    Setting('min_track_distance', _F.min_track_distance, 'pixels: new tracks start only this '
            'far from tracked points', 'frontend', low=0.0, high=1000.0, live=True),
    Setting('tracking', _F.tracking, "sequential mode: 'match' every frame with the learned "
            "matcher, or 'flow': optical flow between learned frames (hybrid, a few ms a "
            'frame)', 'frontend', TRACKING),
    Setting('flow_max_frames', _F.flow_max_frames, "tracking 'flow': a learned frame at least "
            'every this many frames', 'frontend', low=1, live=True),
    Setting('flow_min_share', _F.flow_min_share, "tracking 'flow': a learned frame as soon as "
            'fewer than this share of the tracks of the last one are still followed',
            'frontend', low=0.0, high=1.0, live=True),
    Setting('flow_back_threshold', _F.flow_back_threshold, "tracking 'flow': forward-backward "
            'check, pixels (a point whose flow back misses its start by more is dropped)',
            'frontend', low=0.01, high=100.0, live=True),
    Setting('max_epipolar_error', _F.max_epipolar_error, 'stereo, rectified: drop matches '
            'whose rows differ by more pixels than this, or with negative disparity; 0: off',
            'frontend', low=0.0, high=1000.0, live=True),
    # -- node ------------------------------------------------------------------------------
    Setting('autostart', True, 'configure and activate at start; false: wait for a lifecycle '
            'manager', 'node'),
    Setting('use_compressed', False, 'subscribe <image>/compressed (CompressedImage)', 'node'),
    Setting('sync_slop', 0.0, 'stereo: largest stamp difference (s) of a left/right pair; '
            '0: exact', 'node', low=0.0, high=10.0, live=True),
    Setting('sync_queue_size', 10, 'stereo: unpaired images kept per side', 'node', low=1),
    Setting('image_qos_depth', 5, 'depth of the image subscriptions (best effort, keep last)',
            'node', low=1),
    Setting('output_qos_depth', 10, 'depth of the output publishers (reliable, keep last)',
            'node', low=1),
    Setting('publish_keypoints', False, 'publish glue_ros/Keypoints on keypoints', 'node'),
    Setting('publish_descriptors', False, 'include descriptors in the keypoints message',
            'node', live=True),
    Setting('publish_debug_image', False, 'publish matches/image with the matches drawn',
            'node'),
    Setting('publish_vins_features', False, 'publish VINS-Fusion feature-tracker PointClouds '
            '(needs camera_info)', 'node'),
    Setting('vins_topic', 'feature_tracker/feature', 'topic of the VINS-style PointCloud',
            'node'),
    Setting('vins_velocity_units', 'pixels', "'pixels' per second, or 'normalized' "
            "coordinates per second as VINS-Fusion's own tracker", 'node',
            ('pixels', 'normalized')),
    Setting('diagnostics_max_drop_ratio', 0.5, 'diagnostics WARN when more than this share of '
            'the frames received in the last window was dropped', 'node', low=0.0, high=1.0,
            live=True),
    Setting('diagnostics_max_latency_ms', 1000.0, 'diagnostics WARN when the mean latency '
            '(reception to publication) of the last window is above this', 'node', low=1.0,
            high=1e6, live=True),
)}


def defaults() -> dict:
    """Every setting at its default."""
    return {name: s.default for name, s in SETTINGS.items()}


def validate(values: dict) -> None:
    """Raise ValueError naming the first bad value, the cross-setting rules included."""
    for name, value in values.items():
        problem = SETTINGS[name].problem(value)
        if problem:
            raise ValueError(problem)
    full = {**defaults(), **values}
    try:
        matcher_config(full)
        frontend_config(full)
    except ValueError as exc:
        raise ValueError(f'parameter {exc}') from None


def matcher_config(values: dict) -> MatcherConfig:
    """The MatcherConfig of a full set of values ('' files and -1 threshold: the defaults)."""
    return MatcherConfig(
        matcher=values['matcher'], features=values['features'],
        max_keypoints=values['max_keypoints'], weights=values['weights'] or None,
        feature_weights=values['feature_weights'] or None, device=values['device'],
        depth_confidence=float(values['depth_confidence']),
        width_confidence=float(values['width_confidence']),
        match_threshold=None if values['match_threshold'] < 0 else values['match_threshold'],
        backend=values['backend'], precision=values['precision'],
        input_size=tuple(values['input_size']),
        engine_cache_dir=values['engine_cache_dir'] or None).validate()


def frontend_config(values: dict) -> FrontendConfig:
    """The FrontendConfig of a full set of values."""
    return FrontendConfig(
        mode=values['mode'], geometric_check=values['geometric_check'],
        ransac_threshold=float(values['ransac_threshold']), reference=values['reference'],
        keyframe_min_matches=values['keyframe_min_matches'],
        track_max_age=values['track_max_age'], max_tracks=values['max_tracks'],
        min_track_distance=float(values['min_track_distance']),
        max_epipolar_error=float(values['max_epipolar_error']),
        tracking=values['tracking'], flow_max_frames=values['flow_max_frames'],
        flow_min_share=float(values['flow_min_share']),
        flow_back_threshold=float(values['flow_back_threshold']),
        track_stereo_left=values['mode'] == 'stereo' and values['publish_vins_features']
    ).validate()


# -- command-line flags -------------------------------------------------------------------
MATCHER_FLAGS = tuple(n for n, s in SETTINGS.items() if s.group == 'matcher')
VERIFY_FLAGS = ('geometric_check', 'ransac_threshold')
TRACK_FLAGS = ('reference', 'keyframe_min_matches', 'track_max_age', 'max_tracks',
               'min_track_distance', 'tracking', 'flow_max_frames', 'flow_min_share',
               'flow_back_threshold')


def add_arguments(parser: argparse.ArgumentParser, names: Iterable[str]) -> None:
    """A --flag per setting, with its type, default, choices and description."""
    for name in names:
        s = SETTINGS[name]
        flag = '--' + name.replace('_', '-')
        kwargs = {'default': s.default, 'help': s.description.replace('%', '%%')}
        if s.kind is bool:
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, **kwargs)
            continue
        if s.kind is list:
            kwargs.update(type=type(s.default[0]), nargs=len(s.default))
        else:
            kwargs['type'] = s.kind
        if s.choices:
            kwargs['choices'] = s.choices
        parser.add_argument(flag, **kwargs)


def values_from_args(args: argparse.Namespace, names: Iterable[str], **extra) -> dict:
    """The full set of values: the flags `names` (where parsed) and `extra` over the defaults.

    ValueError names a bad one.
    """
    values = defaults()
    values.update({name: getattr(args, name) for name in names if hasattr(args, name)})
    values.update(extra)
    values['input_size'] = list(values['input_size'])
    validate(values)
    return values


__all__ = ['Setting', 'SETTINGS', 'defaults', 'validate', 'matcher_config', 'frontend_config',
           'add_arguments', 'values_from_args', 'MATCHER_FLAGS', 'VERIFY_FLAGS', 'TRACK_FLAGS']
