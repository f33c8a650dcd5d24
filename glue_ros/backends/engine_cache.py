"""On-disk cache of serialized TensorRT engines: keys, metadata and invalidation rules.

Pure Python (no TensorRT import), so the rules are testable anywhere. An engine is stored as
``<stem>.engine`` with a sidecar ``<stem>.json`` holding the full key and the engine's
sha256. The stem contains a digest of the key, so a different ONNX model, input size,
precision, GPU (name and compute capability) or TensorRT version never finds the file.

A cached engine is used only when its sidecar matches the key exactly, the bytes match the
recorded sha256 and the deserialiser accepts them; otherwise (missing / foreign / truncated /
corrupt) it is rebuilt and replaced. Files are written to a temporary name and moved into
place, so concurrent processes never read half-written files; the last writer wins.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

from glue_ros.core.atomic_files import write_bytes_atomically

CACHE_FORMAT_VERSION = 1
_log = logging.getLogger(__name__)
T = TypeVar('T')


def default_cache_root() -> Path:
    """$XDG_CACHE_HOME/glue_ros, or ~/.cache/glue_ros when XDG_CACHE_HOME is unset."""
    base = os.environ.get('XDG_CACHE_HOME') or os.path.join(os.path.expanduser('~'), '.cache')
    return Path(base) / 'glue_ros'


def default_engine_dir() -> Path:
    """Return the default folder of cached TensorRT engines: <cache root>/engines."""
    return default_cache_root() / 'engines'


def file_sha256(path: str | os.PathLike) -> str:
    """Hex sha256 of a file's contents."""
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''):
            digest.update(block)
    return digest.hexdigest()


@dataclasses.dataclass(frozen=True)
class EngineKey:
    """Everything a serialized engine depends on; any change means a different engine."""

    onnx_sha256: str
    input_size: tuple  # (width, height)
    precision: str  # 'fp16' or 'fp32', as resolved for this GPU
    gpu_name: str
    compute_capability: tuple  # (major, minor)
    tensorrt_version: str

    def to_dict(self) -> dict:
        """JSON-able form, as stored in the sidecar (lists where the key has tuples)."""
        return {
            'format': CACHE_FORMAT_VERSION,
            'onnx_sha256': str(self.onnx_sha256),
            'input_size': [int(v) for v in self.input_size],
            'precision': str(self.precision),
            'gpu_name': str(self.gpu_name),
            'compute_capability': [int(v) for v in self.compute_capability],
            'tensorrt_version': str(self.tensorrt_version),
        }

    def digest(self) -> str:
        """Hex sha256 of the canonical JSON of the key."""
        text = json.dumps(self.to_dict(), sort_keys=True, separators=(',', ':'))
        return hashlib.sha256(text.encode()).hexdigest()

    def stem(self) -> str:
        """File name stem: readable size and precision plus a digest of the whole key."""
        width, height = self.input_size
        return f'coarse_loftr_{width}x{height}_{self.precision}_{self.digest()[:24]}'


def make_key(
    onnx_path: str | os.PathLike,
    input_size: Sequence[int],
    precision: str,
    gpu_name: str,
    compute_capability: Sequence[int],
    tensorrt_version: str,
) -> EngineKey:
    """Make the key of an ONNX file (hashed), the build settings and the machine."""
    return EngineKey(
        file_sha256(onnx_path),
        tuple(int(v) for v in input_size),
        precision,
        gpu_name,
        tuple(int(v) for v in compute_capability),
        tensorrt_version,
    )


class EngineCache:
    """Folder of engines; ``load_or_build`` applies the reuse / rebuild rules."""

    def __init__(self, cache_dir: str | os.PathLike | None = None):
        self.cache_dir = Path(cache_dir) if cache_dir is not None else default_engine_dir()

    def paths(self, key: EngineKey) -> tuple[Path, Path]:
        """(engine file, metadata sidecar) of `key`."""
        stem = key.stem()
        return self.cache_dir / f'{stem}.engine', self.cache_dir / f'{stem}.json'

    def validate(self, key: EngineKey) -> tuple[bytes | None, str]:
        """(engine bytes, '') when the cached files are usable for `key`, else (None, why)."""
        engine_path, meta_path = self.paths(key)
        if not engine_path.is_file():
            return None, 'not cached'
        try:
            meta = json.loads(meta_path.read_text())
        except (OSError, ValueError) as exc:
            return None, f'metadata {meta_path} unreadable ({type(exc).__name__})'
        if not isinstance(meta, dict) or meta.get('key') != key.to_dict():
            return None, f'metadata {meta_path} does not match the key (foreign engine)'
        try:
            data = engine_path.read_bytes()
        except OSError as exc:
            return None, f'engine {engine_path} unreadable ({exc})'
        if hashlib.sha256(data).hexdigest() != meta.get('engine_sha256'):
            return None, f'engine {engine_path} does not match its recorded sha256 (corrupt)'
        return data, ''

    def load_or_build(
        self, key: EngineKey, build: Callable[[], bytes], deserialize: Callable[[bytes], T]
    ) -> tuple[T, str]:
        """Return (engine, how): how is 'reused', 'built' (nothing cached) or 'rebuilt'.

        `build()` returns serialized engine bytes; `deserialize(bytes)` returns the runtime
        engine and raises or returns None when the bytes are not a usable engine. A cached
        engine that fails any check is rebuilt; a freshly built one that cannot be
        deserialised raises RuntimeError.
        """
        data, why = self.validate(key)
        if data is not None:
            try:
                engine = deserialize(data)
            except Exception as exc:  # the runtime's own error types vary
                engine, why = None, f'deserialisation failed: {type(exc).__name__}: {exc}'
            if engine is not None:
                _log.info('reusing cached TensorRT engine %s', self.paths(key)[0])
                return engine, 'reused'
            why = why or 'deserialisation failed'
        how = 'built' if why == 'not cached' else 'rebuilt'
        if how == 'rebuilt':
            _log.warning('rebuilding TensorRT engine: %s', why)
        else:
            _log.info('building TensorRT engine for %s (this can take minutes)', key.stem())
        data = bytes(build())
        engine = deserialize(data)
        if engine is None:
            raise RuntimeError('the TensorRT engine just built cannot be deserialised')
        self._store(key, data)
        return engine, how

    def _store(self, key: EngineKey, data: bytes) -> None:
        engine_path, meta_path = self.paths(key)
        meta = {'key': key.to_dict(), 'engine_sha256': hashlib.sha256(data).hexdigest()}
        try:
            self.cache_dir.mkdir(parents=True, exist_ok=True)
            write_bytes_atomically(engine_path, data)
            write_bytes_atomically(meta_path, json.dumps(meta, indent=1, sort_keys=True).encode())
        except OSError as exc:  # a read-only cache must not stop the node
            _log.warning('cannot cache the TensorRT engine in %s: %s', self.cache_dir, exc)
