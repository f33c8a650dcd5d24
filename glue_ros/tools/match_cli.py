"""glue-ros-match IMAGE0 IMAGE1: match two image files with the same API as the node."""
from __future__ import annotations

import argparse
import json
import statistics
import sys
from typing import Optional

import cv2
import numpy as np
import torch

from glue_ros.core.camera import CameraModel
from glue_ros.core.errors import GlueRosError
from glue_ros.frontend.frontend import REFERENCES, FrontendConfig
from glue_ros.frontend.geometry import CHECKS
from glue_ros.matcher import (BACKENDS, DEVICES, FEATURES, MATCHERS, PRECISIONS,
                              MatcherConfig)


def add_matcher_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags that choose and tune a matcher; shared by the CLI tools."""
    parser.add_argument('--matcher', choices=MATCHERS, default='lightglue')
    parser.add_argument('--features', choices=FEATURES, default='xfeat')
    parser.add_argument('--max-keypoints', type=int, default=2048)
    parser.add_argument('--weights', help='matcher weights (default: packaged)')
    parser.add_argument('--feature-weights', help='extractor weights (default: packaged; '
                        'SuperPoint: required)')
    parser.add_argument('--depth-confidence', type=float, default=0.95,
                        help='LightGlue early exit; -1 disables')
    parser.add_argument('--width-confidence', type=float, default=0.99,
                        help='LightGlue pruning; -1 disables')
    parser.add_argument('--match-threshold', type=float, default=None)
    parser.add_argument('--device', choices=DEVICES, default='cpu')
    parser.add_argument('--backend', choices=BACKENDS, default='torch',
                        help='matcher runtime; LightGlue exported (onnxruntime, tensorrt) '
                        'runs all layers: no early exit or pruning')
    parser.add_argument('--precision', choices=PRECISIONS, default='auto',
                        help='fp16: CUDA; bf16: LightGlue attention in bfloat16 on the CPU; '
                        'auto: fp16 on CUDA, bf16 on CPUs with AMX, else fp32')
    parser.add_argument('--input-size', type=int, nargs=2, default=(640, 480),
                        metavar=('W', 'H'), help='coarse_loftr network input size')
    parser.add_argument('--threads', type=int, default=0,
                        help='torch CPU threads (0: torch default)')


def add_frontend_arguments(parser: argparse.ArgumentParser, camera: bool = True,
                           tracks: bool = False) -> None:
    """The flags of the geometric verification (and the camera it may use) and tracks."""
    defaults = FrontendConfig()
    parser.add_argument('--geometric-check', choices=CHECKS, default=defaults.geometric_check,
                        help="robust model the matches must fit; 'auto': essential when the "
                        'camera is known, else fundamental')
    parser.add_argument('--ransac-threshold', type=float, default=defaults.ransac_threshold,
                        metavar='PX', help='inlier threshold of the geometric check, pixels')
    if camera:
        parser.add_argument('--camera', type=float, nargs=4, metavar=('FX', 'FY', 'CX', 'CY'),
                            help='pinhole intrinsics of both images (undistorted): enables '
                            'the essential matrix and the relative pose')
    if tracks:
        parser.add_argument('--reference', choices=REFERENCES, default=defaults.reference,
                            help='sequential reference: a keyframe or the previous frame')
        parser.add_argument('--keyframe-min-matches', type=int,
                            default=defaults.keyframe_min_matches,
                            help='keyframe: a new one below this many verified matches')
        parser.add_argument('--track-max-age', type=int, default=defaults.track_max_age,
                            help='previous-frame reference: frames an unmatched track lives')
        parser.add_argument('--max-tracks', type=int, default=defaults.max_tracks,
                            help='feature budget: tracks alive at most')
        parser.add_argument('--min-track-distance', type=float,
                            default=defaults.min_track_distance, metavar='PX',
                            help='new tracks start only this far from tracked points')


def frontend_config_from_args(args, mode: str = 'sequential', **extra) -> FrontendConfig:
    """FrontendConfig from parsed add_frontend_arguments flags; ValueError names a bad one."""
    values = {'mode': mode, 'geometric_check': args.geometric_check,
              'ransac_threshold': args.ransac_threshold, **extra}
    for name in ('reference', 'keyframe_min_matches', 'track_max_age', 'max_tracks',
                 'min_track_distance'):
        if hasattr(args, name):
            values[name] = getattr(args, name)
    return FrontendConfig(**values).validate()


def camera_from_args(args, size) -> Optional[CameraModel]:
    """The pinhole CameraModel of --camera for images of `size` (width, height), or None."""
    if not getattr(args, 'camera', None):
        return None
    fx, fy, cx, cy = args.camera
    K = np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]])
    return CameraModel(size[0], size[1], 'plumb_bob', np.zeros(5), K, np.eye(3),
                       np.c_[K, np.zeros(3)])


def config_from_args(args) -> MatcherConfig:
    """MatcherConfig from parsed add_matcher_arguments flags."""
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    return MatcherConfig(
        matcher=args.matcher, features=args.features, max_keypoints=args.max_keypoints,
        weights=args.weights, feature_weights=args.feature_weights, device=args.device,
        depth_confidence=args.depth_confidence, width_confidence=args.width_confidence,
        match_threshold=args.match_threshold, backend=args.backend, precision=args.precision,
        input_size=tuple(args.input_size)).validate()


def read_image(path: str) -> np.ndarray:
    """An RGB (or grey) uint8 image from a file; GlueRosError when unreadable."""
    image = cv2.imread(path, cv2.IMREAD_UNCHANGED)
    if image is None:
        raise GlueRosError(f'cannot read image {path}')
    if image.dtype != np.uint8:
        image = cv2.normalize(image, None, 0, 255, cv2.NORM_MINMAX).astype(np.uint8)
    if image.ndim == 3:
        code = cv2.COLOR_BGRA2RGB if image.shape[2] == 4 else cv2.COLOR_BGR2RGB
        image = cv2.cvtColor(image, code)
    return image


def run(args) -> dict:
    """Match the pair `args.repeat` times after a warm-up; returns the JSON report."""
    from glue_ros.matcher import build_matcher
    from glue_ros.frontend.frontend import Frontend
    image0, image1 = read_image(args.image0), read_image(args.image1)
    matcher = build_matcher(config_from_args(args))
    frontend = Frontend(matcher, frontend_config_from_args(args))
    cameras = (camera_from_args(args, image0.shape[1::-1]),
               camera_from_args(args, image1.shape[1::-1]))
    frontend.match_pair(image0, image1, cameras)  # warm-up
    timings = {'extract': [], 'match': [], 'verify_track': [], 'total': []}
    out = None
    for _ in range(max(1, args.repeat)):
        out = frontend.match_pair(image0, image1, cameras)
        for key in timings:
            timings[key].append(out.timing_ms[key])
    result, verification = out.result, out.verification
    report = {
        'matcher': matcher.name, 'backend': matcher.config.backend,
        'device': str(matcher.device), 'grid_step': result.grid_step,
        'points0': result.points0.round(3).tolist(), 'points1': result.points1.round(3).tolist(),
        'scores': result.scores.round(5).tolist(),
        'num_matches': len(result),
        'num_keypoints0': result.num_keypoints0, 'num_keypoints1': result.num_keypoints1,
        'layers_used': result.layers_used, 'layers_total': result.layers_total,
        'timing_ms': {k: round(statistics.median(v), 3) for k, v in timings.items()},
        'repeat': max(1, args.repeat),
        'geometric_model': verification.model, 'geometric_status': verification.status,
        'num_outliers': out.num_outliers,
        'rotation': None if verification.rotation is None else verification.rotation.tolist(),
        'translation': (None if verification.translation is None
                        else verification.translation.tolist()),
    }
    if args.viz:
        from glue_ros.core.drawing import draw_matches, save_rgb
        save_rgb(args.viz, draw_matches(
            image0, image1, result.points0, result.points1, result.scores,
            text=f'{matcher.name}: {len(result)} matches, layers {result.layers_used}/'
                 f'{result.layers_total}'))
    return report


def main(argv=None) -> int:
    """Entry point of glue-ros-match."""
    parser = argparse.ArgumentParser(prog='glue-ros-match', description=__doc__)
    parser.add_argument('image0')
    parser.add_argument('image1')
    add_matcher_arguments(parser)
    add_frontend_arguments(parser)
    parser.add_argument('--repeat', type=int, default=1,
                        help='time the pair N times after a warm-up (medians reported)')
    parser.add_argument('--json', help='write the matches and timings to this JSON file')
    parser.add_argument('--viz', help='write a picture of the matches (PNG)')
    args = parser.parse_args(argv)
    try:
        report = run(args)
    except (GlueRosError, ValueError, OSError) as exc:
        print(f'glue-ros-match: error: {exc}', file=sys.stderr)
        return 2
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(report, f)
    t = report['timing_ms']
    print(f"{report['matcher']} ({report['backend']}, {report['device']}): "
          f"{report['num_matches']} matches between {report['num_keypoints0']} and "
          f"{report['num_keypoints1']} keypoints ({report['num_outliers']} outliers removed, "
          f"{report['geometric_model']}: {report['geometric_status']}), layers "
          f"{report['layers_used']}/{report['layers_total']}; extract {t['extract']:.1f} ms, "
          f"match {t['match']:.1f} ms, verify {t['verify_track']:.1f} ms, total "
          f"{t['total']:.1f} ms (median of {report['repeat']})")
    return 0


if __name__ == '__main__':
    sys.exit(main())
