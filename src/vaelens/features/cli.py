"""`vaelens fit-features`: fit a feature network for perceptual losses and save it.

    vaelens fit-features --name dsprites-supervised            # a built-in recipe, into the cache
    vaelens fit-features --data name=natural image_size=32 --method contrastive --steps 800 --out nat32.safetensors
    vaelens fit-features --list                                # built-in recipes and cached networks

Torch and the data loaders are imported only when the command runs, so `vaelens --help` stays fast.
"""

from __future__ import annotations

import argparse

DEFAULT_CUSTOM_STEPS = 1000


def add_fit_features_parser(subparsers) -> argparse.ArgumentParser:
    """Register the `fit-features` command on an argparse subparsers object."""
    parser = subparsers.add_parser(
        "fit-features", help="fit a feature network for perceptual losses (offline stand-in for VGG/AlexNet)",
        description="Fit a small conv feature network on data vaelens has and save it (safetensors + JSON). "
                    "Use it in training with loss.perceptual=features:NAME_OR_FILE.")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--name", help="a built-in recipe (see --list); saved in the cache unless --out is given")
    source.add_argument("--data", nargs="+", metavar="KEY=VALUE",
                        help="DataConfig fields of custom training data, e.g. name=natural image_size=32")
    source.add_argument("--list", action="store_true", help="list the built-in recipes and the cached networks")
    parser.add_argument("--method", choices=("supervised", "denoising", "contrastive"),
                        help="how to fit custom data (required with --data)")
    parser.add_argument("--steps", type=int, default=None,
                        help=f"optimisation steps (default: the recipe's; {DEFAULT_CUSTOM_STEPS} with --data)")
    parser.add_argument("--batch-size", type=int, default=64, help="images per step with --data (default 64)")
    parser.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate with --data (default 1e-3)")
    parser.add_argument("--seed", type=int, default=0, help="seed with --data (default 0)")
    parser.add_argument("--out", help="where to save: a .safetensors path, or a bare name (stored in the cache)")
    parser.add_argument("--force", action="store_true", help="refit a built-in network that is already cached")
    parser.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N | auto (default cpu)")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    parser.set_defaults(handler=command_fit_features)
    return parser


def _data_config(pairs: list[str]):
    from vaelens.config import default_config, parse_override, update

    values = {}
    for text in pairs:
        key, value = parse_override(text)
        values[f"data.{key.removeprefix('data.')}"] = value
    return update(default_config(), values).data


def _number(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def held_out_lines(metadata: dict) -> list[str]:
    """Human-readable held-out metrics after fitting, each with its value before fitting."""
    lines = []
    before = metadata.get("held_out_at_init", {})
    for key, value in metadata["held_out"].items():
        entries = value.items() if isinstance(value, dict) else [(None, value)]
        for sub_key, number in entries:
            label = key if sub_key is None else f"{key}.{sub_key}"
            initial = before.get(key, {}).get(sub_key) if sub_key is not None else before.get(key)
            suffix = "" if initial is None or key in ("images", "identity_mse") or key.startswith("chance") \
                else f"   (at init {_number(initial)})"
            lines.append(f"  {label}: {_number(number)}{suffix}")
    return lines


def _report(metadata: dict, path) -> None:
    print(f"{metadata['method']} feature network on {metadata['data']['train']['name']} "
          f"({metadata['in_channels']} x {metadata['image_size']} x {metadata['image_size']}, widths "
          f"{metadata['widths']}), {metadata['steps']} steps in {metadata.get('fit_seconds', '?')} s")
    print(f"held-out metrics ({metadata['objective']}):")
    print("\n".join(held_out_lines(metadata)))
    print(f"saved: {path} (+ {path.with_suffix('.json').name})")


def _list() -> int:
    from vaelens.features.recipes import RECIPES
    from vaelens.features.store import cached_feature_networks, features_dir

    print("built-in recipes:")
    for name, recipe in RECIPES.items():
        print(f"  {name}: {recipe.summary} ({recipe.method}, {recipe.steps} steps)")
    cached = cached_feature_networks()
    print(f"cached in {features_dir()}: {', '.join(cached) if cached else '(none)'}")
    return 0


def command_fit_features(args) -> int:
    from vaelens.features.fit import fit_feature_network
    from vaelens.features.recipes import fit_recipe, recipe_for
    from vaelens.features.store import feature_network_path, load_feature_network, save_feature_network

    if args.list:
        return _list()
    if args.name is None and args.data is None:
        raise ValueError("give --name RECIPE (see --list) or --data KEY=VALUE ... with --method and --out")
    progress = not args.no_progress
    if args.name is not None:
        recipe_for(args.name)  # an unknown name fails here, before anything is loaded
        target = feature_network_path(args.out or args.name)
        if target.is_file() and args.out is None and not args.force:
            _, metadata = load_feature_network(target)
            print(f"'{args.name}' is already fitted (use --force to fit it again)")
            _report(metadata, target)
            return 0
        network, metadata = fit_recipe(args.name, steps=args.steps, progress=progress, device=args.device)
    else:
        if args.method is None or args.out is None:
            raise ValueError("--data needs --method (supervised | denoising | contrastive) and --out (where to save)")
        target = feature_network_path(args.out)
        network, metadata = fit_feature_network(
            _data_config(args.data), args.method, DEFAULT_CUSTOM_STEPS if args.steps is None else args.steps,
            batch_size=args.batch_size,
            lr=args.lr, seed=args.seed, device=args.device, progress=progress)
    path = save_feature_network(network, metadata, target)
    _report(metadata, path)
    return 0
