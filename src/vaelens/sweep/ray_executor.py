"""The `ray` sweep executor: each run a Ray task, on a local Ray instance or on a cluster."""

from __future__ import annotations

import copy
from dataclasses import dataclass

from vaelens.errors import MissingDependency, VaelensError
from vaelens.sweep.tasks import OnOutcome, RunOutcome, RunTask, report_outcome, run_task


@dataclass
class RayOptions:
    address: str | None = None
    """Ray cluster address ('auto' on a cluster node); None starts a local Ray instance."""
    runs_per_gpu: int = 1
    """Runs sharing one GPU (each asks for 1 / runs_per_gpu of one)."""
    max_retries: int = 2
    """Times a run whose worker died is retried (it resumes from its last checkpoint)."""
    num_cpus: int | None = None
    """CPUs of a local Ray instance (None: all)."""

    def check(self) -> None:
        if self.runs_per_gpu < 1:
            raise ValueError(f"runs_per_gpu must be at least 1, got {self.runs_per_gpu}")
        if self.max_retries < 0:
            raise ValueError(f"max_retries must be at least 0, got {self.max_retries}")


class RayUnreachable(VaelensError, ConnectionError):
    """The Ray cluster at --address does not answer."""


class RayExecutor:
    """Each run a Ray task: on a local Ray instance, or on the cluster at `options.address`.

    With GPUs in the cluster a run asks for 1 / runs_per_gpu of one, so that many share a GPU; a
    run whose worker dies (node lost, OOM-killed) is retried up to `max_retries` times, resuming
    from its last checkpoint. On a multi-node cluster the sweep directory must be on a file system
    every node sees at the same path, since each run writes its own directory.
    """

    def __init__(self, options: RayOptions | None = None):
        self.options = options or RayOptions()
        self.options.check()

    @staticmethod
    def _import_ray():
        try:
            import ray
        except ImportError as error:
            raise MissingDependency("the ray executor needs Ray: pip install 'vaelens[ray]' "
                                    "(or use --executor local)") from error
        return ray

    def _init(self, ray, progress: bool) -> None:
        if self.options.address is None:
            ray.init(address="local", num_cpus=self.options.num_cpus, include_dashboard=False, log_to_driver=progress)
            return
        try:
            ray.init(address=self.options.address, log_to_driver=progress)
        except ConnectionError as error:
            raise RayUnreachable(f"cannot reach the Ray cluster at --address {self.options.address} ({error}); give "
                               "the address that `ray start --head` printed, or 'auto' on a cluster node") from error

    def execute(self, tasks: list[RunTask], progress: bool = True,
                on_outcome: OnOutcome | None = None) -> list[RunOutcome]:
        ray = self._import_ray()
        started_here = not ray.is_initialized()
        if started_here:
            self._init(ray, progress)
        try:
            return self._run(ray, tasks, on_outcome)
        finally:
            if started_here:
                ray.shutdown()

    def _run(self, ray, tasks: list[RunTask], on_outcome: OnOutcome | None) -> list[RunOutcome]:
        gpus = ray.cluster_resources().get("GPU", 0)
        remote = ray.remote(num_cpus=1, num_gpus=(1 / self.options.runs_per_gpu) if gpus else 0,
                            max_retries=self.options.max_retries)(_ray_run_task)
        pending = {remote.remote(task, bool(gpus)): task for task in tasks}
        by_id: dict[str, RunOutcome] = {}
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            task = pending.pop(done[0])
            try:
                outcome = ray.get(done[0])
            except Exception as error:  # noqa: BLE001 - retries exhausted or the task was lost
                outcome = RunOutcome(task.run_id, "failed", f"ray task failed after {self.options.max_retries} "
                                                            f"retries: {type(error).__name__}: {error}", 0.0)
            report_outcome(outcome, by_id, on_outcome)
        return [by_id[task.run_id] for task in tasks]


def _ray_run_task(task: RunTask, on_gpu: bool) -> RunOutcome:
    if task.config.train.device in ("auto", "cuda"):
        # Ray exposes only the GPU it granted this task (CUDA_VISIBLE_DEVICES), as cuda:0.
        task = copy.deepcopy(task)
        task.config.train.device = "cuda" if on_gpu else "cpu"
    return run_task(task, progress=False)


OPTIONS = RayOptions
EXECUTOR = RayExecutor
