"""The Ray executor: model-holding actors, bounded in-flight videos, redone on actor loss.

``workers`` actors (default: one per GPU of the cluster, else 2 CPU actors), each a
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
import uuid
from collections.abc import Callable
from typing import Any

from vidcam.batch.options import BatchOptions
from vidcam.errors import VidcamError

PER_ACTOR = 2  # videos in flight per actor
MAX_RESTARTS = 3  # times one video may lose its actor before it is a failed row


def ray_executor(options: BatchOptions) -> Callable:
    """Check Ray is importable now (a one-line error otherwise); returns the executor."""
    try:
        import ray  # noqa: F401
    except ModuleNotFoundError:
        raise VidcamError("--executor ray needs Ray: pip install 'vidcam[ray]'") from None
    return run_ray


class _Actor:
    """The actor class body (wrapped by ``ray.remote`` at run time)."""

    def __init__(self, options: BatchOptions, threads: int) -> None:
        from vidcam.batch.worker import VideoWorker, set_threads

        set_threads(threads)
        self.worker = VideoWorker(options)

    def process(self, item, out, fp) -> dict[str, Any]:
        return self.worker.process(item, out, fp)

    def ready(self) -> bool:
        return True


def run_ray(todo: list, options: BatchOptions, on_row: Callable[[dict[str, Any]], None]) -> None:
    import ray

    started = False
    if not ray.is_initialized():
        kw: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
        if options.ray_address:
            kw["address"] = options.ray_address
        ray.init(**kw)
        started = True
    try:
        _Pool(ray, options, len(todo)).run(todo, on_row)
    finally:
        if started:
            ray.shutdown()


class _Pool:
    def __init__(self, ray, options: BatchOptions, n_videos: int) -> None:
        self.ray = ray
        gpus = int(ray.cluster_resources().get("GPU", 0))
        cpus = int(ray.cluster_resources().get("CPU", 1))
        device = str(options.explain.get("device", "auto"))
        self.use_gpu = gpus > 0 and device != "cpu"
        n = options.workers or (gpus if self.use_gpu else 2)
        self.n = max(1, min(n, n_videos))
        self.threads = 1 if self.use_gpu else max(1, cpus // self.n)
        if not self.use_gpu and options.explain.get("device") in (None, "auto"):
            options = BatchOptions(
                **{**options.as_dict(), "explain": {**options.explain, "device": "cpu"}}
            )
        self.options = options
        res = {"num_gpus": 1} if self.use_gpu else {"num_cpus": min(self.threads, cpus)}
        self.cls = ray.remote(**res)(_Actor)
        self.actors: dict[int, Any] = {}
        self.serial = 0
        self.run_id = uuid.uuid4().hex[:8]

    def _new_actor(self) -> int:
        self.serial += 1
        self.actors[self.serial] = self.cls.options(
            name=f"vidcam-batch-{self.run_id}-{self.serial}"
        ).remote(self.options, self.threads)
        return self.serial

    def run(self, todo: list, on_row: Callable[[dict[str, Any]], None]) -> None:
        ray = self.ray
        queue = collections.deque(todo)
        losses: dict[str, int] = collections.Counter()
        inflight: dict[Any, tuple[int, tuple]] = {}  # ref -> (actor id, task)
        load: dict[int, int] = {}
        for _ in range(self.n):
            load[self._new_actor()] = 0
        try:
            while queue or inflight:
                for aid in list(load):  # fill every live actor up to PER_ACTOR
                    while queue and load[aid] < PER_ACTOR:
                        task = queue.popleft()
                        ref = self.actors[aid].process.remote(*task)
                        inflight[ref] = (aid, task)
                        load[aid] += 1
                done, _ = ray.wait(list(inflight), num_returns=1)
                ref = done[0]
                aid, task = inflight.pop(ref)
                try:
                    row = ray.get(ref)
                except (ray.exceptions.RayActorError, ray.exceptions.WorkerCrashedError):
                    self._replace(aid, load, inflight, queue, losses, task, on_row)
                    continue
                load[aid] -= 1
                on_row(row)
        finally:
            for a in self.actors.values():
                ray.kill(a)

    def _replace(self, aid, load, inflight, queue, losses, task, on_row) -> None:
        """Actor ``aid`` is gone: requeue its videos (front of the queue) and start another."""
        lost = [task] + [t for r, (a, t) in list(inflight.items()) if a == aid]
        for r in [r for r, (a, _) in inflight.items() if a == aid]:
            inflight.pop(r)
        load.pop(aid, None)
        self.actors.pop(aid, None)
        for t in reversed(lost):
            item = t[0]
            losses[item.key] += 1
            if losses[item.key] > MAX_RESTARTS:
                from vidcam.batch.state import write_failed
                from vidcam.batch.worker import base_row

                row = base_row(item, None)
                row["error"] = f"the Ray actor died {losses[item.key]} times on this video"
                write_failed(t[1], row, t[2], item.path)
                on_row(row)
            else:
                queue.appendleft(t)
        load[self._new_actor()] = 0
