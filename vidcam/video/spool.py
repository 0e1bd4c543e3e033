"""Window maps kept on disk between the two passes (memory stays flat however long the video)."""

from __future__ import annotations

import tempfile

import numpy as np
import torch


class MapSpool:
    """Per-window tensors kept on disk (an anonymous temporary file) until rendering.

    ``put(arrays)`` appends one window's named tensors (stored as their CPU bytes; use bfloat16,
    float16 or uint8 to keep it small) and returns its index; ``get(i)`` reads them back with
    their dtype. Memory stays flat however long the video is.
    """

    def __init__(self) -> None:
        self._file = tempfile.TemporaryFile(prefix="vidcam-maps-")  # noqa: SIM115 (lives with us)
        self._index: list[dict[str, tuple[int, tuple[int, ...], np.dtype, bool]]] = []
        self._end = 0

    def __len__(self) -> int:
        return len(self._index)

    def put(self, arrays: dict[str, torch.Tensor]) -> int:
        entry = {}
        self._file.seek(self._end)
        for name, t in arrays.items():
            t = t.detach().contiguous().cpu()
            bf16 = t.dtype == torch.bfloat16  # NumPy has no bfloat16: store its bits
            a = (t.view(torch.int16) if bf16 else t).numpy()
            self._file.write(a.tobytes())
            entry[name] = (self._end, a.shape, a.dtype, bf16)
            self._end += a.nbytes
        self._index.append(entry)
        return len(self._index) - 1

    def get(self, i: int) -> dict[str, torch.Tensor]:
        out = {}
        for name, (offset, shape, dtype, bf16) in self._index[i].items():
            self._file.seek(offset)
            n = int(np.prod(shape)) * np.dtype(dtype).itemsize
            a = np.frombuffer(self._file.read(n), dtype=dtype).reshape(shape)
            t = torch.from_numpy(a.copy())
            out[name] = t.view(torch.bfloat16) if bf16 else t
        return out

    def close(self) -> None:
        self._file.close()
