"""Analyse a run directory: the one path every caller takes (`vaelens analyze`, sweeps, the study)."""

from __future__ import annotations

import logging
from pathlib import Path

from vaelens.analysis.options import AnalysisOptions
from vaelens.analysis.run import analyze, write_analysis
from vaelens.data import load_dataset
from vaelens.devices import resolve_device
from vaelens.runs import load_run
from vaelens.training.rundir import RunDirectory
from vaelens.training.tensorboard import TensorBoardLog, check_available

logger = logging.getLogger("vaelens")


class RunDivergedError(ValueError):
    """The run diverged; its kept checkpoint is analysed only when asked for."""


def analyze_run(run_dir, options: AnalysisOptions | None = None, *, data_config=None, out=None, device="auto",
                progress: bool = True, allow_diverged: bool = False) -> tuple[Path, dict]:
    """Measure a run's latents on its test split (or `data_config`) and write analysis.json + figures into
    the run directory (or `out`). Returns (path, results). The results record which checkpoint step was
    measured and the run's status; a diverged run is refused unless `allow_diverged`, and then analysed
    at its last good checkpoint with a warning."""
    options = (options or AnalysisOptions()).check()
    directory = RunDirectory(run_dir)
    status = directory.status()
    if status == "diverged":
        summary = directory.read_summary() or {}
        what = f"{directory.path} diverged at step {summary.get('step')} ({summary.get('error', 'no message')})"
        if not allow_diverged:
            raise RunDivergedError(f"{what}; its last good checkpoint can still be analysed: pass --diverged "
                                   "(allow_diverged=True), and read the numbers as those of an unfinished model")
        logger.warning("%s; analysing its last good checkpoint", what.split(" (")[0])
    loaded = load_run(directory.path, resolve_device(device))
    data = load_dataset(data_config or loaded.config.data, split="test")
    results = analyze(loaded.model, data, objective=loaded.objective, max_images=options.images,
                      distortion_images=options.distortion_images, disentanglement=options.disentanglement,
                      quick=options.quick, seed=options.seed, device=resolve_device(device), progress=progress,
                      probe=options.probe, probe_images=options.probe_images)
    results.update({"run.status": status, "run.checkpoint_step": loaded.step, "run.steps": loaded.config.train.steps})
    path = write_analysis(results, Path(out) if out is not None else directory.path, loaded.model, loaded.objective,
                          data)
    if out is None and loaded.config.train.tensorboard:
        _log_to_tensorboard(directory, loaded.config, results)
    return path, results


def _log_to_tensorboard(directory: RunDirectory, config, results: dict) -> None:
    """The run's analysis beside its training in TensorBoard (vaelens.training.tensorboard): the hyperparameters
    again (a run trained before they were logged gets them too) and every number as analysis/<key>."""
    try:
        check_available()
    except ValueError as error:
        logger.warning("%s: analysis not logged to TensorBoard: %s", directory.path, error)
        return
    log = TensorBoardLog(directory.tensorboard_folder)
    try:
        log.hyperparameters(config)
        log.final_metrics(results, results["run.checkpoint_step"], "analysis")
    finally:
        log.close()
