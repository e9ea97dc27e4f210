"""What `vaelens analyze` prints after writing analysis.json: a few headline keys and the latent scale for a
diffusion model, with the one line to paste into the autoencoder's config.json."""

from __future__ import annotations

HEADLINE_KEYS = ("rate", "mutual_information", "active_units", "geometry.isoscore",
                 "posterior_variance.normalized_entropy")
"""Printed with 4 significant digits where present."""
INLINE_CHANNELS = 16
"""Per-channel lists up to this long are printed in the config.json line; longer ones are named by key."""


def _number(value, digits: int = 4) -> str:
    return f"{value:.{digits}g}"


def _with_error(results: dict, key: str) -> str:
    error = results.get(f"{key}_stderr")
    return _number(results[key]) + (f" (se {_number(error, 2)})" if error is not None else "")


def _channel_list(results: dict, key: str) -> str:
    values = results[f"latent_stats.{key}"]
    if len(values) > INLINE_CHANNELS:
        return f"<latent_stats.{key} of analysis.json>"
    return "[" + ", ".join(_number(value, 5) for value in values) + "]"


def latent_scale_lines(results: dict) -> list[str]:
    """The measured latent scale (beside a diffusers model's configured one) and the config.json line; empty
    when the analysis has no latent_stats keys (an analysis.json written before them)."""
    if results.get("latent_stats.scaling_factor") is None:
        return []
    configured = "".join(f", configured {name} {_number(results[key])}" for name, key in
                         (("scaling_factor", "model.configured_scaling_factor"),
                          ("shift_factor", "model.configured_shift_factor")) if results.get(key) is not None)
    scale, shift = _number(results["latent_stats.scaling_factor"], 5), _number(results["latent_stats.shift_factor"], 5)
    measured = (f"  latent scale (posterior samples z of {results['latent_stats.num_images']} images, seed "
                f"{results['latent_stats.seed']}): std {_with_error(results, 'latent_stats.sample_std')}, "
                f"mean {_with_error(results, 'latent_stats.sample_mean')}; scaling_factor "
                f"{_with_error(results, 'latent_stats.scaling_factor')}{configured}")
    paste = (f'  config.json: "scaling_factor": {scale} (SD), or "scaling_factor": {scale}, "shift_factor": {shift} '
             f'(SD3/FLUX), or per channel "latents_mean": {_channel_list(results, "channel_mean")}, "latents_std": '
             f'{_channel_list(results, "channel_std")} with "scaling_factor": 1.0')
    return [measured, paste]


def summary_lines(results: dict) -> list[str]:
    """The lines `vaelens analyze` prints under "analysis written: PATH"."""
    headline = [f"  {key}: {_number(results[key])}" for key in HEADLINE_KEYS if key in results]
    return headline + latent_scale_lines(results)
