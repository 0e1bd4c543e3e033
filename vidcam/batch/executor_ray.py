"""The Ray executor: model-holding actors, bounded in-flight videos, redone on actor loss.

``workers`` actors (default: one per GPU of the cluster, else 2 CPU actors; never more than
the cluster's GPUs / CPUs), each a
:class:`~vidcam.batch.worker.VideoWorker` that loaded the model once; a video (decode,
explain, render, encode, write) runs inside one actor, on the shared file system. At most
2 videos per actor are in flight (back-pressure: memory and the object store stay bounded);
rows come back as they finish and are streamed into the index by the driver. When an actor
dies (killed, out of memory, node lost), its in-flight videos go back to the queue and a new
actor replaces it: every video is done exactly once (partial outputs are atomic temp files,
swept when the video is redone).
"""

from __future__ import annotations

import collections
import os
import socket
import sys
import time
import uuid
from collections.abc import Callable
from typing import Any

from vidcam.batch.options import BatchOptions
from vidcam.errors import VidcamError

#: environment variables vidcam's workers read, passed on to a cluster's workers
_FORWARDED_ENV = ("VIDCAM_DEMUXERS", "VIDCAM_OFFLINE")

PER_ACTOR = 2  # videos in flight per actor
MAX_RESTARTS = 3  # times one video may lose its actor before it is a failed row
START_TIMEOUT_S = 600.0  # an actor that has not loaded its model by then: the run stops
HARD_GRACE_S = 60.0  # past --video-timeout (its own check): the actor is killed


def ray_executor(options: BatchOptions) -> Callable:
    """Check Ray is importable now (a one-line error otherwise); returns the executor."""
    try:
        import ray  # noqa: F401
    except ModuleNotFoundError:
        raise VidcamError("--executor ray needs Ray: pip install 'vidcam[ray]'") from None
    return run_ray


class _Actor:
    """The actor class body (wrapped by ``ray.remote`` at run time). A model that cannot load
    is kept as its one-line error (:meth:`ready` returns it): the driver stops the run once."""

    def __init__(self, options: BatchOptions, threads: int) -> None:
        from vidcam.batch.worker import VideoWorker, one_line, set_threads

        set_threads(threads)
        self.error: str | None = None
        try:
            self.worker = VideoWorker(options)
        except Exception as exc:  # reported by ready(): never a dead actor without a cause
            self.error = one_line(exc)

    def process(self, item, out, fp) -> dict[str, Any]:
        return self.worker.process(item, out, fp)

    def ready(self) -> str | None:
        return self.error


def run_ray(todo: list, options: BatchOptions, on_row: Callable[[dict[str, Any]], None]) -> None:
    """Run ``todo`` on Ray: the cluster at ``ray_address`` (checked reachable first), else a
    private local instance (``address="local"``: never a cluster this machine has recorded)."""
    import ray

    started = False
    if not ray.is_initialized():
        if options.ray_address:
            check_reachable(options.ray_address)
        address = options.ray_address or "local"
        # workers of a remote cluster do not inherit this process's environment
        env = {k: os.environ[k] for k in _FORWARDED_ENV if k in os.environ}
        runtime = {"runtime_env": {"env_vars": env}} if env else {}
        try:
            ray.init(address=address, include_dashboard=False, log_to_driver=False, **runtime)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise VidcamError(
                f"--ray-address {address!r}: cannot start or join Ray "
                f"({' '.join(str(exc).split())[:200]})"
            ) from None
        started = True
    try:
        _Pool(ray, options, len(todo)).run(todo, on_row)
    finally:
        if started:
            ray.shutdown()


def check_reachable(address: str, timeout: float = 5.0) -> None:
    """``HOST:PORT`` (or ``ray://HOST:PORT``) accepts a TCP connection within ``timeout``
    seconds, else a one-line :class:`VidcamError` (``ray.init`` would retry for minutes)."""
    if address in ("auto", "local"):
        return
    host, _, port = address.split("://", 1)[-1].rstrip("/").rpartition(":")
    if not host or not port.isdigit():
        raise VidcamError(f"--ray-address {address!r} must be HOST:PORT (or auto / local)")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except OSError as exc:
        raise VidcamError(
            f"--ray-address {address!r}: no Ray cluster answers there ({exc.strerror or exc}); "
            "start one (ray start --head) or leave --ray-address out for a private local one"
        ) from None


class _Pool:
    """``n`` model-holding actors, sized by the cluster's resources (never more actors than it
    can host: an actor that cannot be placed would hold its videos forever)."""

    def __init__(self, ray, options: BatchOptions, n_videos: int) -> None:
        self.ray = ray
        total = ray.cluster_resources()
        gpus, cpus = int(total.get("GPU", 0)), int(total.get("CPU", 0))
        device = str(options.explain.device)
        self.use_gpu = gpus > 0 and device != "cpu"
        capacity = gpus if self.use_gpu else cpus
        if capacity < 1:
            raise VidcamError("the Ray cluster has no CPU to run a worker actor on; add a node")
        want = options.workers or (gpus if self.use_gpu else 2)
        if want > capacity:
            unit = "GPU" if self.use_gpu else "CPU"
            print(
                f"vidcam batch: --workers {want} capped at {capacity}: the Ray cluster has "
                f"{capacity} {unit}(s)",
                file=sys.stderr,
            )
        self.n = max(1, min(want, capacity, n_videos))
        self.threads = 1 if self.use_gpu else max(1, cpus // self.n)
        if not self.use_gpu and options.explain.device in (None, "auto"):
            options = options.on_device("cpu")
        self.options = options
        res = {"num_gpus": 1} if self.use_gpu else {"num_cpus": self.threads}
        self.cls = ray.remote(**res)(_Actor)
        self.actors: dict[int, Any] = {}
        self.serial = 0
        self.run_id = uuid.uuid4().hex[:8]
        limit = options.video_timeout
        self.hard_limit = None if limit is None else limit + max(HARD_GRACE_S, 0.5 * limit)

    def _start(self, count: int) -> list[int]:
        """Start ``count`` actors and wait until each loaded the model; a model that cannot
        load stops the run with its own one-line error (once, not per video)."""
        ray = self.ray
        ids = []
        for _ in range(count):
            self.serial += 1
            self.actors[self.serial] = self.cls.options(
                name=f"vidcam-batch-{self.run_id}-{self.serial}"
            ).remote(self.options, self.threads)
            ids.append(self.serial)
        for aid in ids:
            try:
                error = ray.get(self.actors[aid].ready.remote(), timeout=START_TIMEOUT_S)
            except ray.exceptions.GetTimeoutError:
                raise VidcamError(
                    f"no Ray worker actor started within {START_TIMEOUT_S:g} s (is the cluster "
                    "busy or short of CPUs/GPUs?)"
                ) from None
            except (ray.exceptions.RayActorError, ray.exceptions.WorkerCrashedError) as exc:
                text = " ".join(str(exc).split())[:300]
                raise VidcamError(f"a Ray worker actor died while starting: {text}") from None
            if error is not None:
                raise VidcamError(error)
        return ids

    def run(self, todo: list, on_row: Callable[[dict[str, Any]], None]) -> None:
        ray = self.ray
        self.queue = collections.deque(todo)
        self.losses: dict[str, int] = collections.Counter()
        self.inflight: dict[Any, tuple[int, tuple]] = {}  # ref -> (actor id, task)
        self.load: dict[int, int] = {}
        self.since: dict[int, float] = {}  # actor id -> when its current video started
        try:
            for aid in self._start(self.n):
                self.load[aid] = 0
            while self.queue or self.inflight:
                self._fill()
                done, _ = ray.wait(list(self.inflight), num_returns=1, timeout=self._poll())
                if not done:
                    self._stop_overdue(on_row)
                    continue
                ref = done[0]
                aid, task = self.inflight.pop(ref)
                try:
                    row = ray.get(ref)
                except (ray.exceptions.RayActorError, ray.exceptions.WorkerCrashedError):
                    self._replace(aid, task, on_row)
                    continue
                self.load[aid] -= 1
                self.since[aid] = time.monotonic()
                on_row(row)
        finally:
            for a in self.actors.values():
                ray.kill(a)

    def _fill(self) -> None:
        """Give every live actor up to :data:`PER_ACTOR` videos."""
        for aid in list(self.load):
            while self.queue and self.load[aid] < PER_ACTOR:
                task = self.queue.popleft()
                ref = self.actors[aid].process.remote(*task)
                self.inflight[ref] = (aid, task)
                if self.load[aid] == 0:
                    self.since[aid] = time.monotonic()
                self.load[aid] += 1

    def _poll(self) -> float | None:
        """Seconds until the first in-flight video passes the hard time limit (None: none)."""
        if self.hard_limit is None or not self.since:
            return None
        busy = [t for a, t in self.since.items() if self.load.get(a)]
        if not busy:
            return None
        return max(0.1, min(busy) + self.hard_limit - time.monotonic())

    def _stop_overdue(self, on_row: Callable[[dict[str, Any]], None]) -> None:
        """An actor stuck past the hard limit (in C code the worker's own limit cannot stop):
        kill it; its current video is a failed row, its queued ones go back to the queue."""
        now = time.monotonic()
        for aid, t in list(self.since.items()):
            if not self.load.get(aid) or now - t < self.hard_limit:
                continue
            mine = [(r, task) for r, (a, task) in self.inflight.items() if a == aid]
            for r, _ in mine:
                self.inflight.pop(r)
            self.ray.kill(self.actors[aid])
            message = (
                f"the video took longer than {self.options.video_timeout:g} s "
                "(--video-timeout); its Ray worker actor was stopped"
            )
            self._fail(mine[0][1], message, on_row)  # actor methods run in submission order
            self._drop(aid, [task for _, task in mine[1:]])

    def _replace(self, aid, task, on_row) -> None:
        """Actor ``aid`` is gone: requeue its videos (front of the queue) and start another."""
        lost = [task] + [t for r, (a, t) in list(self.inflight.items()) if a == aid]
        for r in [r for r, (a, _) in self.inflight.items() if a == aid]:
            self.inflight.pop(r)
        for t in reversed(lost):
            item = t[0]
            self.losses[item.key] += 1
            if self.losses[item.key] > MAX_RESTARTS:
                self._fail(
                    t, f"the Ray actor died {self.losses[item.key]} times on this video", on_row
                )
            else:
                self.queue.appendleft(t)
        self._drop(aid, [])

    def _fail(self, task: tuple, error: str, on_row: Callable[[dict[str, Any]], None]) -> None:
        from vidcam.batch.state import write_failed
        from vidcam.batch.worker import base_row

        item, out, fp = task
        row = base_row(item, None)
        row["error"] = error
        write_failed(out, row, fp, item.path)
        on_row(row)

    def _drop(self, aid: int, requeue: list) -> None:
        """Forget actor ``aid``, put ``requeue`` back at the front, start a replacement."""
        for t in reversed(requeue):
            self.queue.appendleft(t)
        self.load.pop(aid, None)
        self.since.pop(aid, None)
        self.actors.pop(aid, None)
        for new in self._start(1):
            self.load[new] = 0
