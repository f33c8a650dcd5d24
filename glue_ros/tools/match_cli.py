"""glue-ros-match IMAGE0 IMAGE1: match two image files with the same API as the node."""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from dataclasses import replace

import cv2
import numpy as np
import torch

from glue_ros import settings
from glue_ros.core.camera import CameraModel
from glue_ros.core.drawing import draw_matches, save_rgb
from glue_ros.core.errors import GlueRosError
from glue_ros.frontend.frontend import Frontend, FrontendConfig
from glue_ros.matcher import MatcherConfig, build_matcher
from glue_ros.tools.console_log import log_to_console


def add_matcher_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags that choose and tune a matcher (from glue_ros.settings); shared by the tools."""
    settings.add_arguments(parser, settings.MATCHER_FLAGS)
    parser.add_argument(
        '--threads', type=int, default=0, help='torch CPU threads (0: torch default)'
    )


def add_frontend_arguments(
    parser: argparse.ArgumentParser, camera: bool = True, tracks: bool = False
) -> None:
    """The flags of the geometric verification (and the camera it may use) and tracks."""
    settings.add_arguments(parser, settings.VERIFY_FLAGS)
    if camera:
        parser.add_argument(
            '--camera',
            type=float,
            nargs=4,
            metavar=('FX', 'FY', 'CX', 'CY'),
            help='pinhole intrinsics of both images (undistorted): enables '
            'the essential matrix and the relative pose',
        )
    if tracks:
        settings.add_arguments(parser, settings.TRACK_FLAGS)


def frontend_config_from_args(
    args: argparse.Namespace, mode: str = 'sequential', **extra: object
) -> FrontendConfig:
    """FrontendConfig from parsed add_frontend_arguments flags; ValueError names a bad one."""
    config = settings.frontend_config(
        settings.values_from_args(args, settings.VERIFY_FLAGS + settings.TRACK_FLAGS, mode=mode)
    )
    return replace(config, **extra).validate()


def camera_from_args(args: argparse.Namespace, size: tuple[int, int]) -> CameraModel | None:
    """The pinhole CameraModel of --camera for images of `size` (width, height), or None."""
    if not getattr(args, 'camera', None):
        return None
    fx, fy, cx, cy = args.camera
    K = np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]])
    return CameraModel(
        size[0], size[1], 'plumb_bob', np.zeros(5), K, np.eye(3), np.c_[K, np.zeros(3)]
    )


def config_from_args(args: argparse.Namespace) -> MatcherConfig:
    """MatcherConfig from parsed add_matcher_arguments flags."""
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    return settings.matcher_config(settings.values_from_args(args, settings.MATCHER_FLAGS))


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


def run(args: argparse.Namespace) -> dict:
    """Match the pair `args.repeat` times after a warm-up; returns the JSON report."""
    image0, image1 = read_image(args.image0), read_image(args.image1)
    matcher = build_matcher(config_from_args(args))
    frontend = Frontend(matcher, frontend_config_from_args(args))
    cameras = (
        camera_from_args(args, image0.shape[1::-1]),
        camera_from_args(args, image1.shape[1::-1]),
    )
    frontend.match_pair(image0, image1, cameras)  # warm-up
    timings = {'extract': [], 'match': [], 'verify_track': [], 'total': []}
    out = None
    for _ in range(max(1, args.repeat)):
        out = frontend.match_pair(image0, image1, cameras)
        for key in timings:
            timings[key].append(out.timing_ms[key])
    result, verification = out.result, out.verification
    report = {
        'matcher': matcher.name,
        'backend': matcher.config.backend,
        'device': str(matcher.device),
        'grid_step': result.grid_step,
        'points0': result.points0.round(3).tolist(),
        'points1': result.points1.round(3).tolist(),
        'scores': result.scores.round(5).tolist(),
        'num_matches': len(result),
        'num_keypoints0': result.num_keypoints0,
        'num_keypoints1': result.num_keypoints1,
        'layers_used': result.layers_used,
        'layers_total': result.layers_total,
        'timing_ms': {k: round(statistics.median(v), 3) for k, v in timings.items()},
        'repeat': max(1, args.repeat),
        'geometric_model': verification.model,
        'geometric_status': verification.status,
        'num_outliers': out.num_outliers,
        'rotation': None if verification.rotation is None else verification.rotation.tolist(),
        'translation': (
            None if verification.translation is None else verification.translation.tolist()
        ),
    }
    if args.viz:
        save_rgb(
            args.viz,
            draw_matches(
                image0,
                image1,
                result.points0,
                result.points1,
                result.scores,
                text=f'{matcher.name}: {len(result)} matches, layers {result.layers_used}/'
                f'{result.layers_total}',
            ),
        )
    return report


def build_parser() -> argparse.ArgumentParser:
    """The flags of glue-ros-match (those of settings from the settings schema)."""
    parser = argparse.ArgumentParser(prog='glue-ros-match', description=__doc__)
    parser.add_argument('image0')
    parser.add_argument('image1')
    add_matcher_arguments(parser)
    add_frontend_arguments(parser)
    parser.add_argument(
        '--repeat',
        type=int,
        default=1,
        help='time the pair N times after a warm-up (medians reported)',
    )
    parser.add_argument('--json', help='write the matches and timings to this JSON file')
    parser.add_argument('--viz', help='write a picture of the matches (PNG)')
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of glue-ros-match."""
    log_to_console('glue-ros-match')
    parser = build_parser()
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
    print(
        f'{report["matcher"]} ({report["backend"]}, {report["device"]}): '
        f'{report["num_matches"]} matches between {report["num_keypoints0"]} and '
        f'{report["num_keypoints1"]} keypoints ({report["num_outliers"]} outliers removed, '
        f'{report["geometric_model"]}: {report["geometric_status"]}), layers '
        f'{report["layers_used"]}/{report["layers_total"]}; extract {t["extract"]:.1f} ms, '
        f'match {t["match"]:.1f} ms, verify {t["verify_track"]:.1f} ms, total '
        f'{t["total"]:.1f} ms (median of {report["repeat"]})'
    )
    return 0


if __name__ == '__main__':
    sys.exit(main())
