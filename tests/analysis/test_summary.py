"""What `vaelens analyze` prints: the headline keys, and the latent scale with its config.json line."""

from vaelens.analysis.summary import INLINE_CHANNELS, summary_lines

LATENT_STATS = {"latent_stats.scaling_factor": 0.18215, "latent_stats.shift_factor": -0.5, "latent_stats.seed": 0,
                "latent_stats.num_images": 256, "latent_stats.sample_std": 5.49, "latent_stats.sample_mean": -0.5,
                "latent_stats.channel_mean": [0.1, 0.2], "latent_stats.channel_std": [4.0, 6.0]}


def test_the_config_json_line_pastes_the_measured_factors():
    lines = summary_lines({"rate": 12.345, **LATENT_STATS})
    assert lines[0] == "  rate: 12.35"
    assert "scaling_factor 0.1822" in lines[1] and "configured" not in lines[1]
    assert lines[2] == ('  config.json: "scaling_factor": 0.18215 (SD), or "scaling_factor": 0.18215, "shift_factor": '
                        '-0.5 (SD3/FLUX), or per channel "latents_mean": [0.1, 0.2], "latents_std": [4, 6] with '
                        '"scaling_factor": 1.0')


def test_long_channel_lists_are_named_not_printed_and_older_analyses_print_no_scale():
    many = {**LATENT_STATS, "latent_stats.channel_mean": [0.0] * (INLINE_CHANNELS + 1),
            "latent_stats.channel_std": [1.0] * (INLINE_CHANNELS + 1)}
    assert '"latents_mean": <latent_stats.channel_mean of analysis.json>' in summary_lines(many)[-1]
    assert summary_lines({"rate": 1.0}) == ["  rate: 1"]
    assert summary_lines({**LATENT_STATS, "latent_stats.scaling_factor": None}) == []
