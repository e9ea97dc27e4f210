"""Where one run of the standard study spends its wall time: training (the model's forward, the objective with
its perceptual network, backward, Adam, data, logging, checkpoints, calibration) and analysis (encoding, the
latent statistics, distortions, the probe, figures), and what two workers on two cores do to each other.

    python benchmarks/profile_study_run.py                      # every workload, one run each
    python benchmarks/profile_study_run.py --workload natural-pointwise --threads 1

Each phase is timed by wrapping the function that does it (a few calls per step, so the wrapping costs little);
nested phases are reported separately and their parent without them ("other" is what no wrapper covers). The
workloads are the standard study's own configs (vaelens.study.study_specs("standard")), first seed, first beta;
`--workload natural-perceptual-effnet` is the natural +perceptual run with the ImageNet network instead of the
self-fitted one. `--pair` runs two processes at once, one thread each, as `--workers 2` does on two cores.
Not part of the test suite: timings are measured, never asserted.
"""

from __future__ import annotations

import argparse
import copy
import json
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from contextlib import contextmanager
from pathlib import Path

import torch

WORKLOADS = {
    "natural-pointwise": ("natural", "additive", None),
    "natural-perceptual": ("natural", "additive", "features:natural-denoising"),
    "natural-perceptual-effnet": ("natural", "additive", "effnet-lite0"),
    "dsprites-pointwise": ("dsprites", "additive", None),
}
"""Name -> (data set, convention, loss.perceptual) of the study run profiled."""


class PhaseClock:
    """Wall seconds per phase, with nesting: a phase's own time excludes the phases timed inside it."""

    def __init__(self):
        self.own = defaultdict(float)
        self.calls = defaultdict(int)
        self.stack: list[list] = []

    @contextmanager
    def phase(self, name: str):
        self.stack.append([name, 0.0])
        started = time.perf_counter()
        try:
            yield
        finally:
            elapsed = time.perf_counter() - started
            _, inner = self.stack.pop()
            self.own[name] += elapsed - inner
            self.calls[name] += 1
            if self.stack:
                self.stack[-1][1] += elapsed

    def wrap(self, owner, attribute: str, name: str) -> None:
        original = getattr(owner, attribute)

        def timed(*args, **kwargs):
            with self.phase(name):
                return original(*args, **kwargs)

        setattr(owner, attribute, timed)


def _instrument(clock: PhaseClock) -> None:
    """Wrap the functions each phase runs, where their callers look them up."""
    import vaelens.analysis.run as analysis_run
    import vaelens.sweep.tasks as tasks
    import vaelens.training.run as training_run
    import vaelens.training.trainer as trainer
    from vaelens.data.base import ImageData
    from vaelens.losses.objective import VAEObjective
    from vaelens.losses.perceptual import PerceptualTerm
    from vaelens.models.base import VAE
    from vaelens.training.rundir import MetricsLog

    clock.wrap(tasks, "train", "training: setup, loop and summary")
    clock.wrap(trainer, "load_dataset", "training: load data")
    clock.wrap(training_run.TrainingRun, "__init__", "training: build model, calibrate, dry run")
    clock.wrap(ImageData, "batch", "training: draw a batch")
    clock.wrap(VAE, "forward", "training: model forward")
    clock.wrap(VAEObjective, "forward", "training: objective (pointwise, KL)")
    clock.wrap(PerceptualTerm, "__call__", "training: perceptual network forward")
    clock.wrap(torch.Tensor, "backward", "training: backward")
    clock.wrap(torch.optim.Adam, "step", "training: Adam step")
    clock.wrap(MetricsLog, "write", "training: metrics.jsonl")
    clock.wrap(training_run.TrainingRun, "save_checkpoint", "training: checkpoints and image grids")
    clock.wrap(training_run.TrainingRun, "finish", "training: final evaluation and summary")
    clock.wrap(tasks, "analyze_run", "analysis: load the run, figures, analysis.json")
    clock.wrap(analysis_run, "encode_for_analysis", "analysis: encode")
    clock.wrap(analysis_run, "latent_statistics", "analysis: MI, TC, geometry, variance")
    clock.wrap(analysis_run, "_distortions", "analysis: distortions")
    clock.wrap(analysis_run, "run_probe", "analysis: probe")


def study_task(workload: str, out: Path):
    from vaelens.study import study_specs
    from vaelens.sweep.spec import expand, load_spec

    dataset, convention, perceptual = WORKLOADS[workload]
    reference = "features:natural-denoising" if perceptual == "effnet-lite0" else perceptual
    tasks = expand(load_spec(study_specs("standard", datasets=(dataset,))[dataset]), out)
    task = next(task for task in tasks if task.config.loss.convention == convention
                and task.config.loss.perceptual == reference and task.config.loss.disc_weight == 0
                and task.config.loss.likelihood != "gaussian_learned")
    task = copy.deepcopy(task)
    task.config.loss.perceptual = perceptual
    return task


def profile(workload: str, threads: int) -> dict:
    """Train and analyse one study run of `workload` in a fresh folder, as the sweep does (run_task)."""
    from vaelens.sweep.tasks import run_task

    torch.set_num_threads(threads)
    clock = PhaseClock()
    _instrument(clock)
    with tempfile.TemporaryDirectory() as folder:
        task = study_task(workload, Path(folder) / "sweep")
        started = time.perf_counter()
        with clock.phase("other (untimed)"):
            outcome = run_task(task, progress=False)
        total = time.perf_counter() - started
    if outcome.status != "finished":
        raise RuntimeError(outcome.error)
    return {"workload": workload, "threads": threads, "steps": task.config.train.steps,
            "batch_size": task.config.train.batch_size, "seconds": total,
            "phases": {name: {"seconds": seconds, "calls": clock.calls[name]}
                       for name, seconds in sorted(clock.own.items(), key=lambda item: -item[1])}}


def start_up_seconds() -> float:
    """A worker's start: a new Python process importing what run_task needs (spawn, as the local executor)."""
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import vaelens.sweep.tasks"], check=True)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workload", choices=sorted(WORKLOADS), action="append")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--pair", action="store_true", help="two processes at once, one thread each")
    parser.add_argument("--json", help="write the records here")
    args = parser.parse_args()
    workloads = args.workload or list(WORKLOADS)
    if args.pair:
        command = [sys.executable, __file__, "--threads", "1", *sum((["--workload", w] for w in workloads), [])]
        pair = [subprocess.Popen([*command, "--json", f"/tmp/profile-pair-{index}.json"]) for index in range(2)]
        for process in pair:
            process.wait()
        return
    records = [profile(workload, args.threads) for workload in workloads]
    for record in records:
        print(f"\n{record['workload']}: {record['seconds']:.1f} s ({record['steps']} steps of "
              f"{record['batch_size']}, {record['threads']} thread(s))")
        for name, phase in record["phases"].items():
            print(f"  {phase['seconds']:8.2f} s  {100 * phase['seconds'] / record['seconds']:5.1f}%  "
                  f"{phase['calls']:7d}  {name}")
    print(f"\nworker start-up (new process, import vaelens.sweep.tasks): {start_up_seconds():.2f} s")
    if args.json:
        Path(args.json).write_text(json.dumps(records, indent=2))


if __name__ == "__main__":
    main()
