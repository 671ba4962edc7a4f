"""Per-parameter ``||theta||`` and ``||delta theta||`` of one optimizer step, measured in cache.

The flat parameter array is made of segments (one per named parameter). The optimizer hands
:class:`UpdateNorms` each chunk of it as it updates it (:meth:`Optimizer.step` with ``norms=``),
so the norms are read while the chunk is in cache, not in extra passes over memory afterwards:

- Most optimizers change the parameters by one addition of a step array, ``p += d``
  (:meth:`Optimizer.returns_delta`): ``||delta theta||`` is ``||d||``; nothing is copied.
- The others (decoupled weight decay, then the step; torch's NAdam, which adds two parts) have
  each chunk copied just before its update and subtracted just after:
  ``delta theta = theta_after - theta_before``.

The two differ only by the rounding of ``theta + d`` into the parameters' dtype. ``||theta||``
is taken after the step.

Each chunk is cut at segment boundaries into pieces; a piece's squared norm is one BLAS dot
(large pieces) or part of one ``np.add.reduceat`` (runs of small pieces). Piece sums are added
per segment in float64, in piece order, after the step.
"""

from __future__ import annotations

import numpy as np

# A piece of at least this many elements gets its own dot; shorter neighbours share a reduceat.
DOT_MIN = 4096


class UpdateNorms:
    """Collects, for one step, each segment's norm after the update and the norm of its change.

    Args:
        segment_starts: offset of each segment in the flat array, ascending, the first 0.
        size: length of the flat array.
    """

    def __init__(self, segment_starts, size: int):
        self.starts = np.asarray(segment_starts, dtype=np.intp)
        self.size = int(size)
        if len(self.starts) == 0 or self.starts[0] != 0 or np.any(np.diff(self.starts) <= 0) \
                or self.starts[-1] >= self.size:
            raise ValueError("segment_starts must ascend strictly from 0 and stay below size")
        self._key: tuple | None = None
        self._buffer = np.empty(0)

    # -- the optimizer's side -----------------------------------------------------------

    def begin(self, grid: list[tuple[int, int]], dtype: np.dtype) -> None:
        """Prepare for a step over ``grid`` (the optimizer's chunks) in ``dtype``."""
        key = (tuple(grid), np.dtype(dtype).str)
        if key != self._key:
            self._plan(grid, np.dtype(dtype))
            self._key = key

    def before(self, p: np.ndarray) -> None:
        """Chunk ``p`` is about to be updated: keep a copy."""
        np.copyto(self._buffer[: len(p)], p)

    def after(self, start: int, p: np.ndarray, step: np.ndarray | None = None) -> None:
        """Chunk ``p`` was updated, by adding or subtracting ``step`` if given, else since
        :meth:`before`: record its pieces' squared norms of change and of value."""
        scratch = self._buffer[: len(p)]
        ops = self._ops[start]
        if step is None:
            np.subtract(p, scratch, out=scratch)
            self._squares(scratch, ops, self.delta_sq, scratch)
        else:
            self._squares(step, ops, self.delta_sq, scratch)
        self._squares(p, ops, self.param_sq, scratch)

    # -- results --------------------------------------------------------------------------

    def result(self) -> tuple[np.ndarray, np.ndarray]:
        """``(param_norms, update_norms)``: float64, one per segment, in memory order."""
        params = np.sqrt(np.add.reduceat(self.param_sq, self._segment_first))
        updates = np.sqrt(np.add.reduceat(self.delta_sq, self._segment_first))
        return params, updates

    # -- internals ------------------------------------------------------------------------

    def _plan(self, grid: list[tuple[int, int]], dtype: np.dtype) -> None:
        if not grid or grid[0][0] != 0 or grid[-1][1] != self.size:
            raise ValueError(f"the chunk grid must cover 0..{self.size}")
        ops: dict[int, list[tuple]] = {}
        piece_segments: list[np.ndarray] = []
        n_pieces = 0
        longest = 0
        for start, stop in grid:
            inner = self.starts[(self.starts > start) & (self.starts < stop)]
            cuts = np.concatenate(([start], inner, [stop]))
            lengths = np.diff(cuts)
            piece_segments.append(np.searchsorted(self.starts, cuts[:-1], side="right") - 1)
            chunk_ops: list[tuple] = []
            k = 0
            while k < len(lengths):
                a = int(cuts[k] - start)
                if lengths[k] >= DOT_MIN:
                    chunk_ops.append(("dot", n_pieces + k, a, int(cuts[k + 1] - start)))
                    k += 1
                    continue
                first = k
                while k < len(lengths) and lengths[k] < DOT_MIN:
                    k += 1
                b = int(cuts[k] - start)
                offsets = (cuts[first:k] - start - a).astype(np.intp)
                chunk_ops.append(("reduce", n_pieces + first, a, b, offsets))
            ops[start] = chunk_ops
            n_pieces += len(lengths)
            longest = max(longest, stop - start)
        self._ops = ops
        segments = np.concatenate(piece_segments)
        self._segment_first = np.searchsorted(segments, np.arange(len(self.starts)), side="left")
        self.param_sq = np.zeros(n_pieces)
        self.delta_sq = np.zeros(n_pieces)
        self._buffer = np.empty(longest, dtype=dtype)

    @staticmethod
    def _squares(x: np.ndarray, ops: list[tuple], out: np.ndarray, scratch: np.ndarray) -> None:
        """Squared norm of every piece of chunk ``x`` into ``out`` (``scratch`` may be ``x``)."""
        for op in ops:
            if op[0] == "dot":
                _, index, a, b = op
                out[index] = np.dot(x[a:b], x[a:b])
            else:
                _, index, a, b, offsets = op
                squares = np.multiply(x[a:b], x[a:b], out=scratch[a:b])
                out[index : index + len(offsets)] = np.add.reduceat(squares, offsets)
