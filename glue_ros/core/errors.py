"""One exception type per boundary of the core."""


class GlueRosError(Exception):
    """Base class of every error the core raises on purpose."""


class WeightsError(GlueRosError):
    """A weights file is missing, unreadable, or does not fit the model."""


class InputImageError(GlueRosError):
    """An image cannot be matched: empty, too small, or of an unsupported layout."""


class BackendUnavailableError(GlueRosError):
    """A backend (CUDA, ONNX Runtime, TensorRT) is not usable on this machine."""


class CameraModelError(GlueRosError, ValueError):
    """A CameraInfo (or intrinsics) that cannot be used to normalize pixels."""


class ImageConversionError(InputImageError, ValueError):
    """An image message that cannot be turned into a numpy image (cv_bridge's CvBridgeError)."""


class ParameterError(GlueRosError, ValueError):
    """A configuration value the node or a tool cannot start with."""
