"""Worker process set-up that must happen before numpy, torch or numba are imported: native
thread pools capped, signals, dying with the driver.

This module imports the standard library only (and :mod:`p4dsim.augment` imports nothing
eagerly), so a process pool's initializer that lives here runs before anything heavy is
loaded. The caps themselves travel in the environment a worker is started with
(:func:`capped_env` around the start of the processes): a spawned child's environment is the
parent's ``os.environ`` at spawn time, and every pool reads its variable when its library is
first imported, which in a child may happen even before the initializer runs (when the
parent's main module is re-imported there).
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from collections.abc import Iterator
from typing import Any

#: the environment variables that size native thread pools (OpenMP, OpenBLAS, MKL, numba,
#: and the BLAS wrappers numpy may load), each capped to one thread in a build worker
THREAD_ENV = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "NUMBA_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
)

_ENV_LOCK = threading.Lock()


@contextlib.contextmanager
def patched_env(values: dict[str, str]) -> Iterator[None]:
    """Within the block, ``os.environ`` holds ``values``; processes started in it inherit
    them. Restored afterwards."""
    with _ENV_LOCK:
        old = {k: os.environ.get(k) for k in values}
        os.environ.update(values)
        try:
            yield
        finally:
            for k, v in old.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v


def capped_env(threads: int = 1) -> contextlib.AbstractContextManager[None]:
    """:func:`patched_env` capping every native thread pool to ``threads``."""
    return patched_env({k: str(threads) for k in THREAD_ENV})


@contextlib.contextmanager
def signals_deferred() -> Iterator[None]:
    """Block SIGINT and SIGTERM in this thread for the block; they are handled at its end. A
    process started inside inherits the mask (its initializer unblocks what it wants)."""
    sigs = {signal.SIGINT, signal.SIGTERM}
    old = signal.pthread_sigmask(signal.SIG_BLOCK, sigs)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def die_with_parent(parent_pid: int) -> None:
    """Linux: have the kernel kill this process when the driver dies (even by SIGKILL), so no
    orphaned worker keeps writing into the output folder."""
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent_pid:
        os._exit(1)


def child_signals() -> None:
    """A worker leaves SIGINT to the driver (a Ctrl-C reaches the whole process group; the
    driver stops the workers itself, without a traceback from each) and dies on SIGTERM."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT, signal.SIGTERM})


def cap_loaded_pools(threads: int = 1) -> None:
    """Cap the pools of libraries already imported whose size the environment does not fix
    after import (torch's intra-op pool, OpenCV's)."""
    torch = sys.modules.get("torch")
    if torch is not None:
        try:
            if torch.get_num_threads() != threads:
                torch.set_num_threads(threads)
        except Exception:
            pass
    cv2 = sys.modules.get("cv2")
    if cv2 is not None:
        try:
            cv2.setNumThreads(threads)
        except Exception:
            pass


def cap_this_process(threads: int = 1) -> None:
    """Cap what can still be capped in a running process: the environment (for libraries
    not imported yet), OpenCV's pool (loaded here: scene building uses it, and its pool is
    sized by a call, not by the environment) and torch's, if loaded."""
    os.environ.update({k: str(threads) for k in THREAD_ENV})
    try:
        import cv2  # noqa: F401
    except ImportError:
        pass
    cap_loaded_pools(threads)


def init_build_worker(parent_pid: int, threads: int = 1) -> None:
    """Initializer of a scene-building process: signals, death with the driver, every native
    thread pool capped to ``threads``."""
    child_signals()
    die_with_parent(parent_pid)
    cap_this_process(threads)


def thread_caps_report() -> dict[str, Any]:
    """What this process's thread pools are: the environment variables, numba's, torch's and
    OpenCV's thread counts, and threadpoolctl's view of the loaded BLAS/OpenMP libraries
    (each where installed). Imports those libraries: call it in a worker, after its work."""
    out: dict[str, Any] = {"pid": os.getpid(), "env": {k: os.environ.get(k) for k in THREAD_ENV}}
    try:
        import numba

        out["numba"] = int(numba.config.NUMBA_NUM_THREADS)
    except ImportError:
        pass
    try:
        import torch

        out["torch"] = int(torch.get_num_threads())
    except ImportError:
        pass
    try:
        import cv2

        out["cv2"] = int(cv2.getNumThreads())
    except ImportError:
        pass
    try:
        import numpy  # noqa: F401  (its BLAS is what threadpoolctl reports)
        from threadpoolctl import threadpool_info

        out["threadpools"] = {
            f"{p.get('internal_api')}:{os.path.basename(p.get('filepath', ''))}": p["num_threads"]
            for p in threadpool_info()
        }
    except ImportError:
        pass
    return out


def kill_processes(procs: list[Any]) -> None:
    """Kill every process of ``procs`` now, then reap them (at most 10 s each)."""
    for p in procs:
        try:
            p.kill()
        except Exception:
            pass
    for p in procs:
        try:
            p.join(timeout=10)
        except Exception:
            pass
