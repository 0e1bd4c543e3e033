"""Window maps kept on disk between the two passes (memory stays flat however long the video)."""

from __future__ import annotations

import tempfile

import numpy as np
import torch


class MapSpool:
    """Per-window tensors kept on disk (an anonymous temporary file) until rendering.

    ``put(arrays)`` appends one window's named tensors (stored as their CPU bytes; use float16 or
    uint8 to keep it small) and returns its index; ``get(i)`` reads them back. Memory stays flat
    however long the video is.
    """

    def __init__(self) -> None:
        self._file = tempfile.TemporaryFile(prefix="vidcam-maps-")  # noqa: SIM115 (lives with us)
        self._index: list[dict[str, tuple[int, tuple[int, ...], np.dtype]]] = []
        self._end = 0

    def __len__(self) -> int:
        return len(self._index)

    def put(self, arrays: dict[str, torch.Tensor]) -> int:
        entry = {}
        self._file.seek(self._end)
        for name, t in arrays.items():
            a = t.detach().contiguous().cpu().numpy()
            self._file.write(a.tobytes())
            entry[name] = (self._end, a.shape, a.dtype)
            self._end += a.nbytes
        self._index.append(entry)
        return len(self._index) - 1

    def get(self, i: int) -> dict[str, torch.Tensor]:
        out = {}
        for name, (offset, shape, dtype) in self._index[i].items():
            self._file.seek(offset)
            n = int(np.prod(shape)) * np.dtype(dtype).itemsize
            a = np.frombuffer(self._file.read(n), dtype=dtype).reshape(shape)
            out[name] = torch.from_numpy(a.copy())
        return out

    def close(self) -> None:
        self._file.close()
