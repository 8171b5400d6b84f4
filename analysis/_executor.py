"""Deterministic chunks of a long computation, on any ``concurrent.futures.Executor``.

GOSH and the permutation tests split their work into chunks of a fixed size that depends only
on the problem (never on the number of workers), and a random chunk draws from its own
generator, ``numpy.random.SeedSequence(seed).spawn(n_chunks)[i]``. The chunks run in the
calling process (``executor=None``) or on anything with the ``Executor`` interface (a
``concurrent.futures.ProcessPoolExecutor`` locally, a ``dask.distributed.Client`` on a
cluster; only ``submit`` and the futures' ``result`` are used), and their results are
gathered in chunk order, so the answer is the same, bit for bit, wherever it ran.

A progress bar (tqdm) counts finished chunks when ``progress=True``, or by default when
standard error is a terminal; otherwise nothing is printed.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

import numpy as np

__all__ = ["chunk_bounds", "chunk_seeds", "run_chunks"]

T = TypeVar("T")


def chunk_bounds(total: int, size: int) -> list[tuple[int, int]]:
    """Return ``(start, stop)`` of consecutive chunks of at most ``size`` items."""
    return [(start, min(start + size, total)) for start in range(0, total, size)]


def chunk_seeds(seed: int | np.random.SeedSequence | None, n: int) -> list[np.random.SeedSequence]:
    """Return one independent seed sequence per chunk (``SeedSequence(seed).spawn(n)``)."""
    root = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
    return list(root.spawn(n))


def _check_executor(executor: Any) -> None:
    if executor is not None and not callable(getattr(executor, "submit", None)):
        raise ValueError(
            f"argument 'executor' = {type(executor).__name__} is not allowed; use None (this "
            "process) or an object with the concurrent.futures.Executor interface (submit), "
            "e.g. ProcessPoolExecutor() or a dask.distributed Client"
        )


def _show(progress: bool | None) -> bool:
    if progress is None:
        return bool(getattr(sys.stderr, "isatty", lambda: False)())
    return bool(progress)


@contextmanager
def _bar(progress: bool | None, total: int, desc: str) -> Iterator[Callable[[int], object]]:
    """Yield an ``update(n)`` callable: a tqdm bar on stderr, or a no-op."""
    if not _show(progress) or total <= 1:
        yield lambda n: None
        return
    try:
        from tqdm.auto import tqdm
    except ImportError:  # pragma: no cover - tqdm is a dependency of the optional extra
        yield lambda n: None
        return
    bar = tqdm(total=total, desc=desc, unit="chunk", file=sys.stderr, leave=False)
    try:
        yield bar.update
    finally:
        bar.close()


def run_chunks(func: Callable[..., T], tasks: Sequence[tuple[Any, ...]], *,
               executor: Any = None, progress: bool | None = None,
               desc: str = "") -> list[T]:
    """Return ``[func(*task) for task in tasks]``, computed in this process or on ``executor``.

    Parameters
    ----------
    func : callable
        A module-level function (it is pickled to the workers of a process pool or cluster).
    tasks : sequence of tuple
        The arguments of each chunk.
    executor : concurrent.futures.Executor or dask.distributed.Client, optional
        Where the chunks run; every chunk is submitted at once and the results are collected
        in task order.
    progress : bool, optional
        Show a progress bar (default: only when standard error is a terminal).
    desc : str
        The bar's label.
    """
    _check_executor(executor)
    out: list[T] = []
    with _bar(progress, len(tasks), desc) as update:
        if executor is None:
            for task in tasks:
                out.append(func(*task))
                update(1)
            return out
        futures = [executor.submit(func, *task) for task in tasks]
        for future in futures:
            out.append(future.result())
            update(1)
    return out
