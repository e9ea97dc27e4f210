"""Which pointwise run a neural run is compared with: at matched beta, and as curves over the beta grid."""

from vaelens.report.pairing import baseline_convention, curve_runs, paired_runs


def paired_differences(records, metric: str) -> dict:
    """(dataset, convention, family, beta) -> {seed: neural - pointwise} of `metric` over the pairs that have it."""
    differences = {}
    for group, pairs in paired_runs(records).items():
        values = {seed: (neural.metric(metric), baseline.metric(metric)) for seed, (neural, baseline) in pairs.items()}
        values = {seed: n - b for seed, (n, b) in values.items() if n is not None and b is not None}
        if values:
            differences[group] = values
    return differences


def test_pairs_match_beta_seed_and_convex_compares_with_additive_pointwise(make_run):
    runs = [make_run("pointwise", seed, beta, rate=10.0 + seed) for seed in (0, 1) for beta in (1.0, 4.0)]
    runs += [make_run("+perceptual", seed, 1.0, "convex", rate=8.0 + 2 * seed) for seed in (0, 1)]
    runs.append(make_run("+perceptual", 2, 1.0, "convex", rate=0.0))  # no pointwise seed 2: unpaired
    pairs = paired_differences(runs, "rate")
    assert pairs == {("dsprites-64", "convex", "+perceptual", 1.0): {0: -2.0, 1: -1.0}}
    assert baseline_convention("ldm") == "ldm"


def test_unfinished_or_other_dataset_runs_are_not_paired(make_run):
    runs = [make_run("pointwise", 0, 1.0), make_run("+perceptual", 0, 1.0, status="failed"),
            make_run("+perceptual", 1, 1.0, dataset="natural"), make_run("pointwise", 1, 1.0)]
    assert paired_differences(runs, "rate") == {}


def test_a_run_with_another_result_setting_is_not_a_baseline(make_run):
    # An SSIM run (or a bf16, grad-clipped or metric-weighted one) is pointwise by family but not the
    # baseline of a plain neural run: every result key outside the compared terms must match.
    neural = make_run("+perceptual", 0, 1.0, rate=7.0)
    for section, key, value in (("loss", "ssim_weight", 0.5), ("train", "bf16", True),
                                ("train", "grad_clip", 1.0), ("loss", "metric", "M.npy")):
        other = make_run("pointwise", 0, 1.0, rate=10.0)
        setattr(getattr(other.config, section), key, value)
        assert paired_differences([other, neural], "rate") == {}, key
    plain = make_run("pointwise", 0, 1.0, rate=10.0)
    assert paired_differences([plain, neural], "rate") == {("dsprites-64", "additive", "+perceptual", 1.0): {0: -3.0}}


def test_a_metric_missing_from_either_run_leaves_the_pair_out_of_that_metric(make_run):
    neural = make_run("+adversarial", 0, 1.0)
    del neural.analysis["mutual_information"]
    runs = [make_run("pointwise", 0, 1.0), neural]
    assert paired_differences(runs, "mutual_information") == {}
    assert list(paired_runs(runs)) == [("dsprites-64", "additive", "+adversarial", 1.0)]


def test_curves_hold_each_seeds_runs_over_the_beta_grid_in_increasing_beta(make_run):
    runs = [make_run("pointwise", seed, beta) for seed in (0, 1) for beta in (4.0, 1.0, 2.0)]
    runs += [make_run("+perceptual", seed, beta, "convex") for seed in (0, 1) for beta in (2.0, 0.5)]
    runs.append(make_run("+perceptual", 3, 1.0, "convex"))  # no pointwise curve for seed 3
    curves = curve_runs(runs)
    assert list(curves) == [("dsprites-64", "convex", "+perceptual")]
    by_seed = curves[("dsprites-64", "convex", "+perceptual")]
    assert sorted(by_seed) == [0, 1]
    neural, baseline = by_seed[1]
    assert [run.beta for run in neural] == [0.5, 2.0] and {run.seed for run in neural} == {1}
    assert [run.beta for run in baseline] == [1.0, 2.0, 4.0] and {run.loss_family for run in baseline} == {"pointwise"}
    assert {run.convention for run in baseline} == {"additive"}


def test_a_second_setting_of_a_family_is_not_mixed_into_a_curve(make_run):
    runs = [make_run("pointwise", 0, beta) for beta in (1.0, 2.0)]
    runs += [make_run("pointwise", 0, beta) for beta in (1.0, 2.0)]
    for run in runs[2:]:
        run.config.model.latent_dim = 8
    neural = [make_run("+perceptual", 0, beta) for beta in (1.0, 2.0, 4.0)]
    neural[2].config.model.latent_dim = 8  # the latent_dim=8 setting's run at beta 4
    neural_runs, baseline = curve_runs(runs + neural)[("dsprites-64", "additive", "+perceptual")][0]
    assert [run.beta for run in neural_runs] == [1.0, 2.0]
    assert baseline == runs[:2]


def test_learned_sigma_runs_pair_with_learned_sigma_pointwise_runs_only(make_run):
    runs = []
    for likelihood, rate in (("bernoulli", 10.0), ("gaussian_learned", 20.0)):
        for family, offset in (("pointwise", 0.0), ("+perceptual", -1.0 if likelihood == "bernoulli" else -5.0)):
            run = make_run(family, 0, 1.0, rate=rate + offset)
            run.config.loss.likelihood = likelihood
            runs.append(run)
    learned = ("dsprites-64", "additive+learned-sigma", "+perceptual", 1.0)
    assert paired_differences(runs, "rate") == {("dsprites-64", "additive", "+perceptual", 1.0): {0: -1.0},
                                                learned: {0: -5.0}}
