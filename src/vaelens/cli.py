"""The `vaelens` command line: train, config, analyze, sweep, report, plan, publish, plateau, reproduce, theory,
demo, fit-features, export, compare.

Each command's handler imports what it runs when it runs, so that `vaelens --help`, a typo in an option and
`vaelens config` answer without importing torch and matplotlib (seconds on a small machine); the executors'
options (vaelens.sweep.executors) are added to `sweep` and `reproduce` only when one of those is the command.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import pickle
import sys
from pathlib import Path

from vaelens.cli_errors import EXPECTED_ERRORS, describe_error, interruption_message, sigterm_as_interrupt
from vaelens.cli_options import add_analysis_switches, image_count_argument


def _add_config_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="YAML file with config sections (data, model, loss, train)")
    parser.add_argument("--preset", help="a shipped preset; `vaelens config --list-presets` lists them")
    parser.add_argument("overrides", nargs="*", metavar="key=value",
                        help="dotted overrides applied last, e.g. loss.beta=4 train.steps=2000")


def _resolve(args):
    from vaelens.config import resolve

    return resolve(args.preset, args.config, args.overrides)


def command_train(args) -> int:
    from vaelens.training import train

    config = _resolve(args)
    result = train(config, args.out, resume=args.resume)
    evaluation = result.summary["eval"]
    print(f"run finished: {result.run_dir}")
    print(f"  rate {evaluation['rate']:.3f} nats, distortion {evaluation['distortion']:.3f} nats "
          f"({result.summary['objective']['likelihood']}, beta={config.loss.beta}, "
          f"convention={result.summary['weighting_convention']})")
    return 0


def command_config(args) -> int:
    import yaml

    from vaelens import config as config_module

    if args.list_presets:
        print("\n".join(config_module.preset_names()))
        return 0
    config = _resolve(args)
    if args.docs:
        from vaelens.config.docs import documented_yaml

        print(documented_yaml(config), end="")
        return 0
    print(yaml.safe_dump(config_module.to_dict(config), sort_keys=False), end="")
    return 0


def command_analyze(args) -> int:
    from vaelens.analysis import analyze_target
    from vaelens.analysis.summary import summary_lines

    path, results = analyze_target(args.run_dir, model_spec=args.model, data_spec=args.data, out=args.out,
                                   image_size=args.image_size,
                                   max_images=args.images, quick=args.quick, device=args.device,
                                   progress=not args.no_progress, allow_diverged=args.diverged, probe=args.probe,
                                   disentanglement=not args.no_disentanglement)
    print("\n".join([f"analysis written: {path}", *summary_lines(results)]))
    return 0


def _executor_options(args) -> dict:
    """The executor options given on the command line (each executor's OPTIONS fields): only those given are
    passed on, and the executor refuses one it does not take."""
    from vaelens.sweep.executors import EXECUTORS, options_class

    names = {item.name for name in EXECUTORS for item in dataclasses.fields(options_class(name))}
    return {name: getattr(args, name) for name in sorted(names) if getattr(args, name, None) is not None}


def command_sweep(args) -> int:
    from vaelens.sweep import run_sweep

    result = run_sweep(args.spec, args.out, executor=args.executor, progress=not args.no_progress,
                       **_executor_options(args))
    if args.no_progress:
        from vaelens.sweep import summary_table

        print(summary_table(result.runs))
    return 1 if result.count("failed") else 0


def command_report(args) -> int:
    from vaelens.report import build_report, claims_text

    report = build_report(args.sweep_dir, traversals=not args.no_traversals, progress=not args.no_progress)
    print(claims_text(report.claims))
    print(f"report written: {report.page} (with results.csv and claims.json)")
    return 0


def claims_of(path: str):
    """The ClaimsReport of a sweep or study directory (evaluated from its runs) or of a claims.json file."""
    from vaelens.io import read_json
    from vaelens.report import ClaimsReport
    from vaelens.report.build import sweep_claims
    from vaelens.training.sweepdir import SweepDirectory

    if not Path(path).exists():
        raise FileNotFoundError(f"{path} does not exist; give a sweep or study directory or a claims.json file")
    if Path(path).is_file():
        return ClaimsReport.from_json(read_json(Path(path)))
    return sweep_claims(SweepDirectory(path).load())


def command_plan(args) -> int:
    from vaelens.io import atomic_write_json
    from vaelens.report.planner import plan, plan_text

    seed_counts = [int(word) for word in args.seeds.split(",")]
    result = plan(claims_of(args.path), seed_counts=seed_counts, replications=args.replications)
    if args.json:
        atomic_write_json(Path(args.json), result.to_json())
    print(plan_text(result) + (f"\nplan written: {args.json}" if args.json else ""))
    return 0


def command_reproduce(args) -> int:
    from vaelens.report import claims_text
    from vaelens.study import reproduce

    scale = "full" if args.full else "standard" if args.standard else "quick"
    report = reproduce(scale, args.out, executor=args.executor,
                       progress=not args.no_progress, **_executor_options(args))
    print(claims_text(report.claims))
    print(f"report: {report.page}")
    return 0


def command_publish(args) -> int:
    from vaelens.report.publish import publish

    differing = publish(args.study_dir, args.markdown, args.figures, check=args.check, previous_dir=args.previous)
    if args.check:
        if differing:
            print(f"{args.markdown} does not match {args.study_dir}: block(s) {', '.join(differing)} differ; "
                  f"rerun without --check to rewrite them")
            return 1
        print(f"{args.markdown} matches {args.study_dir}: every generated block is what the study directory gives")
        return 0
    print(f"rewrote the generated blocks of {args.markdown} (figures in {args.figures or 'docs/study'})")
    return 0


def command_plateau(args) -> int:
    from vaelens.analysis.plateau import check_runs
    from vaelens.devices import resolve_device

    results = check_runs(args.directory, images=args.images, seed=args.seed, device=resolve_device(args.device),
                         progress=not args.no_progress, redo=args.redo)
    checked = [record for _, record in results if record.get("converged") is not None]
    for run_dir, record in results:
        if record.get("converged") is None:
            print(f"{run_dir}: not checked: {record['reason']}")
    print(f"{sum(bool(record['converged']) for record in checked)} of {len(checked)} checked runs are on the plateau "
          f"(plateau.json in each run; {len(results) - len(checked)} not checked)")
    return 0


def command_demo(args) -> int:
    from vaelens.demo import run_demo

    run_demo(Path(args.out), steps=args.steps, progress=not args.no_progress)
    return 0


def _add_executor_arguments(parser: argparse.ArgumentParser, with_options: bool) -> None:
    """--executor, its choices from the registry, and (`with_options`) every executor's options from its OPTIONS
    dataclass, each in a group of its own."""
    from vaelens.sweep.executors import EXECUTORS

    parser.add_argument("--executor", default="local", choices=list(EXECUTORS),
                        help="; ".join(f"{name}: {entry.summary}" for name, entry in EXECUTORS.items()))
    if not with_options:
        return
    from vaelens.options import add_dataclass_options
    from vaelens.sweep.executors import options_class

    for name in EXECUTORS:
        add_dataclass_options(parser.add_argument_group(f"{name} executor"), options_class(name),
                              prefix=f"{name}: ", unset=True)


def _add_train_parser(commands) -> None:
    train = commands.add_parser("train", help="train one beta-VAE into a run directory")
    _add_config_arguments(train)
    train.add_argument("--out", required=True, help="run directory to create (or continue with --resume)")
    train.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    train.set_defaults(handler=command_train)


def _add_config_parser(commands) -> None:
    show = commands.add_parser("config", help="print the resolved configuration")
    _add_config_arguments(show)
    show.add_argument("--docs", action="store_true", help="print every key with its documentation")
    show.add_argument("--list-presets", action="store_true", help="list the shipped presets")
    show.set_defaults(handler=command_config)


def _add_analyze_parser(commands) -> None:
    analyze = commands.add_parser("analyze", help="measure a trained model's latents -> analysis.json + plots")
    analyze.add_argument("run_dir", nargs="?", help="a vaelens run directory")
    analyze.add_argument("--model", help="instead of a run: diffusers:PATH (a local AutoencoderKL folder)")
    analyze.add_argument("--data", help="evaluation data as NAME or NAME:PATH (default: the run's test split), "
                                        "e.g. folder:~/images")
    analyze.add_argument("--image-size", type=int, default=None, help="image size for --data (default: run's, or 64)")
    analyze.add_argument("--out", help="output folder (default: the run directory)")
    analyze.add_argument("--images", type=image_count_argument, default=None,
                         help='images to encode, or "auto" (the default: log N >= rate + 1 nat, 2,000-20,000)')
    add_analysis_switches(analyze, "mechanistic probe under the run's own loss (probe.*, analysis/probe.png)")
    analyze.set_defaults(handler=command_analyze)


def _add_sweep_parser(commands, executor_options: bool) -> None:
    sweep = commands.add_parser("sweep", help="train (and analyse) every run of a sweep spec, skipping finished ones")
    sweep.add_argument("spec", help="sweep spec YAML (examples: src/vaelens/configs/sweeps/)")
    sweep.add_argument("--out", required=True, help="sweep directory (rerun it to resume)")
    _add_executor_arguments(sweep, executor_options)
    sweep.add_argument("--no-progress", action="store_true", help="hide progress bars")
    sweep.set_defaults(handler=command_sweep)


def _add_report_parser(commands) -> None:
    report = commands.add_parser("report", help="results.csv, claims.json and a self-contained report.html of a sweep")
    report.add_argument("sweep_dir", help="a sweep directory (the --out of `vaelens sweep` or `vaelens reproduce`)")
    report.add_argument("--no-traversals", action="store_true", help="skip latent traversals (they load each model)")
    report.add_argument("--no-progress", action="store_true", help="hide progress bars")
    report.set_defaults(handler=command_report)


def _add_plan_parser(commands) -> None:
    planning = commands.add_parser("plan", help="the power of the primary family per seed count (docs/planning.md)")
    planning.add_argument("path", help="a sweep or study directory (with sweep.json) or a claims.json file")
    planning.add_argument("--seeds", default="3,5,8,10,20", help="seed counts the table shows (default 3,5,8,10,20)")
    planning.add_argument("--replications", type=int, default=4000, help="Monte Carlo replications (default 4000)")
    planning.add_argument("--json", help="also write the plan as JSON to this file")
    planning.set_defaults(handler=command_plan)


def _add_publish_parser(commands) -> None:
    publish = commands.add_parser("publish", help="rewrite a study document's generated blocks (claims tables, "
                                                  "verdict counts, convergence, figures) from a study directory")
    publish.add_argument("study_dir", help="a study or sweep directory with claims.json (after `vaelens report`)")
    publish.add_argument("--markdown", required=True, help="the document, e.g. STUDY.md, with <!-- vaelens:NAME --> "
                                                           "... <!-- /vaelens:NAME --> blocks")
    publish.add_argument("--figures", default=None, help="folder for the PNG figures (default: docs/study beside "
                                                         "the document)")
    publish.add_argument("--previous", default=None, help="an earlier study directory: fills the document's "
                         "'previous' block with each pooled row's effect and verdict in both studies")
    publish.add_argument("--check", action="store_true", help="write nothing; exit 1 if a block differs from what "
                                                              "the study directory gives")
    publish.set_defaults(handler=command_publish)


def _add_plateau_parser(commands) -> None:
    plateau = commands.add_parser("plateau", help="the paired plateau check: each run's objective at its checkpoint "
                                                  "at or before 0.8 T and at T, same images and noise -> plateau.json")
    plateau.add_argument("directory", help="a run, sweep or study directory")
    plateau.add_argument("--images", type=int, default=1024, help="training images evaluated (default 1024)")
    plateau.add_argument("--seed", type=int, default=0, help="seed of the image choice and posterior noise")
    plateau.add_argument("--redo", action="store_true", help="measure again runs that already have plateau.json")
    plateau.add_argument("--device", default="auto")
    plateau.add_argument("--no-progress", action="store_true", help="hide progress bars")
    plateau.set_defaults(handler=command_plateau)


def _add_reproduce_parser(commands, executor_options: bool) -> None:
    reproduce = commands.add_parser("reproduce", help="the study of the paper's claims (docs/science.md): sweeps, "
                                                      "claims.json and report.html")
    size = reproduce.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="small subsets and few steps, ~30 min on 2 CPU cores "
                                                           "(the default)")
    size.add_argument("--standard", action="store_true", help="the CPU study published in STUDY.md: "
                                                              "~2 h on 2 CPU cores")
    size.add_argument("--full", action="store_true", help="the presets' models and steps: for a GPU")
    reproduce.add_argument("--out", required=True, help="output directory (rerun to resume)")
    _add_executor_arguments(reproduce, executor_options)
    reproduce.add_argument("--no-progress", action="store_true", help="hide progress bars")
    reproduce.set_defaults(handler=command_reproduce)


def _add_demo_parser(commands) -> None:
    demo = commands.add_parser("demo", help="the quick study on the embedded data (a few minutes on a CPU)")
    demo.add_argument("--out", default="vaelens-demo", help="output directory (default: ./vaelens-demo)")
    demo.add_argument("--steps", type=int, default=None, help="training steps per model (default: demo's own)")
    demo.add_argument("--no-progress", action="store_true", help="hide progress bars")
    demo.set_defaults(handler=command_demo)


EXECUTOR_COMMANDS = ("sweep", "reproduce")
"""The commands that take an executor and its options."""


def build_parser(executor_options: bool = True) -> argparse.ArgumentParser:
    """The command line; `executor_options` adds every executor's options to sweep and reproduce (which imports
    the executors, torch with them)."""
    from vaelens.compare_cli import add_compare_parser
    from vaelens.export.cli import add_export_parser
    from vaelens.features.cli import add_fit_features_parser
    from vaelens.theory.cli import add_theory_parser

    parser = argparse.ArgumentParser(prog="vaelens", description=__doc__.split("\n\n")[0])
    parser.add_argument("--debug", action="store_true",
                        help="show the full traceback of an error (also: environment variable VAELENS_DEBUG=1)")
    commands = parser.add_subparsers(dest="command", required=True)
    with_executors = (_add_sweep_parser, _add_reproduce_parser)
    for add_parser in (_add_train_parser, _add_config_parser, _add_analyze_parser, _add_sweep_parser,
                       _add_report_parser, _add_plan_parser, _add_publish_parser, _add_plateau_parser,
                       _add_reproduce_parser, _add_demo_parser, add_fit_features_parser, add_theory_parser,
                       add_export_parser, add_compare_parser):
        if add_parser in with_executors:
            add_parser(commands, executor_options)
        else:
            add_parser(commands)
    return parser


def _command_of(argv: list[str]) -> str | None:
    """The subcommand named in `argv` (its first word that is not an option)."""
    return next((word for word in argv if not word.startswith("-")), None)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser(executor_options=_command_of(argv) in EXECUTOR_COMMANDS).parse_args(argv)
    debug = args.debug or bool(os.environ.get("VAELENS_DEBUG"))
    try:
        with sigterm_as_interrupt():
            return args.handler(args)
    except (*EXPECTED_ERRORS, OSError, pickle.UnpicklingError) as error:
        message = describe_error(error, args.command)
        if debug or message is None:
            raise
        print(f"vaelens {args.command}: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as error:
        message, status = interruption_message(args.command, error)
        print(f"vaelens {args.command}: {message}", file=sys.stderr)
        return status

if __name__ == "__main__":
    sys.exit(main())
