"""The match_images service: two chosen images in, glue_ros/Matches out (pair mode)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from glue_ros.core.camera import CameraModel
from glue_ros.core.errors import CameraModelError, GlueRosError, ImageConversionError
from glue_ros.core.image_conversion import image_to_numpy
from glue_ros.frontend import records
from glue_ros.matcher import check_image
from glue_ros.ros.messages import to_message
from glue_ros.srv import MatchImages

if TYPE_CHECKING:  # the node imports this module
    from glue_ros.ros.matcher_node import MatcherNode


def answer_match_images(
    node: MatcherNode, request: MatchImages.Request, response: MatchImages.Response
) -> MatchImages.Response:
    """Fill the response; every failure is an answer with `error`, never a raise.

    The node's matcher is shared with its worker: the match waits its turn (node.inference).
    """
    try:
        if node.state != 'active':
            raise GlueRosError(f'the node is {node.state}: activate it to match')
        images = [image_to_numpy(request.query), image_to_numpy(request.reference)]
        for image in images:
            check_image(image)
        cameras = [
            CameraModel.from_camera_info(info, camera_id=k) if info.width > 0 else None
            for k, info in enumerate((request.query_camera_info, request.reference_camera_info))
        ]
        start = time.monotonic()
        with node.inference:
            if node.frontend is None:
                raise GlueRosError('the matcher was unloaded')
            out = node.frontend.match_pair(
                *images, cameras=cameras, check=request.geometric_check or None
            )
            name = node.matcher.name
        response.matches = to_message(
            records.output_record(
                out,
                request.query.header,
                request.reference.header,
                mode=records.MODE_PAIR,
                matcher=name,
                query_size=images[0].shape[1::-1],
                reference_size=images[1].shape[1::-1],
                latency_ms=(time.monotonic() - start) * 1e3,
            )
        )
        response.success = True
    except (GlueRosError, ImageConversionError, CameraModelError, ValueError) as exc:
        response.success, response.error = False, f'{type(exc).__name__}: {exc}'
    except Exception as exc:  # noqa: BLE001 - a bad request must never end the node
        response.success = False
        response.error = f'unexpected {type(exc).__name__}: {exc}'
    return response


__all__ = ['answer_match_images']
