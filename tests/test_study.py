"""The study's sweep specs (`vaelens reproduce`) and the demo's as data, and one tiny study end to end."""

import dataclasses
import itertools
import json

import pytest

from vaelens.config import resolve
from vaelens.demo import demo_spec
from vaelens.losses.families import loss_family
from vaelens.study import FAMILIES, SCALES, StudyScale, run_study, study_design, study_spec, study_specs, write_index


def _variants(spec):
    group = spec["zip"][0]
    lengths = {len(values) for values in group.values()}
    assert len(lengths) == 1, "zipped axes must have equal lengths"
    return [dict(zip(group, values)) for values in zip(*group.values())]


def _family(variant):
    return loss_family({"loss": {"perceptual": variant["loss.perceptual"], "disc_weight": variant["loss.disc_weight"]}})


def test_quick_study_covers_families_conventions_betas_and_three_seeds():
    specs = study_specs("quick")
    assert set(specs) == {"dsprites", "natural"}
    for dataset, spec in specs.items():
        assert spec["grid"]["train.seed"] == [0, 1, 2] and len(spec["grid"]["loss.beta"]) >= 2
        pairs = {(_family(v), v["loss.convention"]) for v in _variants(spec)}
        conventions = {"additive", "convex", "ldm"} if dataset == "natural" else {"additive", "convex"}
        assert pairs == {(f, c) for f in FAMILIES for c in conventions if (f, c) != ("pointwise", "convex")}
        for variant in _variants(spec):
            assert (variant["loss.likelihood"] == "laplace") == (variant["loss.convention"] == "ldm")
            if variant["loss.perceptual"]:
                assert variant["loss.perceptual"] == "effnet-lite0"  # the ImageNet network, nothing to fit
    for variant in _variants(study_specs("standard")["natural"]):  # the published study keeps its networks
        assert variant["loss.perceptual"] in (None, "features:natural-denoising")
        assert spec["overrides"]["train.steps"] == 160  # the quick scale's published length (BENCHMARKS.md)


def test_full_study_is_larger_than_quick():
    quick, full = study_specs("quick")["dsprites"], study_specs("full")["dsprites"]
    assert full["overrides"]["train.steps"] > quick["overrides"]["train.steps"]
    assert len(full["grid"]["loss.beta"]) > len(quick["grid"]["loss.beta"])
    assert full["overrides"]["data.subset"] is None


def test_study_rejects_unknown_scale_dataset_and_families():
    with pytest.raises(ValueError, match="unknown study scale 'huge'"):
        study_specs("huge")
    with pytest.raises(ValueError, match="unknown study data set 'mnist'"):
        study_specs("quick", datasets=("mnist",))
    with pytest.raises(ValueError, match="must include 'pointwise'"):
        study_specs("quick", families=("+perceptual",))


def test_demo_spec_is_small_calibrated_convex_and_uses_its_own_feature_network(tmp_path):
    spec = demo_spec(tmp_path / "net.safetensors")
    variants = _variants(spec)
    assert [(_family(v), v["loss.convention"]) for v in variants] == [("pointwise", "additive"),
                                                                        ("+perceptual", "convex")]
    assert variants[1]["loss.perceptual"] == f"features:{(tmp_path / 'net.safetensors').resolve()}"
    assert variants[1]["loss.perceptual_weight"] == "auto"
    assert spec["overrides"]["model.name"] == "mlp"  # conv64 stays collapsed for the demo's few minutes
    assert max(spec["grid"]["loss.beta"]) / min(spec["grid"]["loss.beta"]) >= 8  # overlapping rate ranges
    assert spec["analysis"]["probe"] is True
    runs = len(variants) * len(spec["grid"]["loss.beta"]) * len(spec["grid"]["train.seed"])
    assert runs == 18 and spec["overrides"]["data.subset"] <= 4096
    assert demo_spec(tmp_path / "n.safetensors", steps=5)["overrides"]["train.steps"] == 5
    with pytest.raises(ValueError, match="--steps"):
        demo_spec(tmp_path / "n.safetensors", steps=0)


@pytest.mark.parametrize("dataset", ["dsprites", "natural"])
def test_every_study_run_resolves_to_a_valid_config(dataset):
    spec = study_specs("full")[dataset]
    overrides = [f"{k}={v if v is not None else 'null'}" for k, v in spec["overrides"].items()]
    for beta, seed, variant in itertools.product(spec["grid"]["loss.beta"], spec["grid"]["train.seed"],
                                                 _variants(spec)):
        values = {**variant, "loss.beta": beta, "train.seed": seed}
        config = resolve(spec["preset"], None, overrides + [f"{k}={'null' if v is None else v}"
                                                            for k, v in values.items()])
        assert config.loss.convention == variant["loss.convention"]


def test_write_index_makes_the_study_folder_a_sweep_directory(tmp_path):
    from vaelens.io import atomic_write_json, read_json

    atomic_write_json(tmp_path / "dsprites" / "sweep.json", {"runs": [
        {"id": "abc", "dir": "runs/abc", "status": "finished", "axes": {"loss.beta": 1.0}}]})
    write_index(tmp_path, {"dsprites": tmp_path / "dsprites"}, {"dsprites": {}})
    index = read_json(tmp_path / "sweep.json")
    assert index["runs"] == [{"id": "dsprites/abc", "dir": "dsprites/runs/abc", "axes": {"loss.beta": 1.0},
                              "status": "finished", "error": None, "seconds": None}]
    # what `vaelens report OUT` follows: the plateau rule, and the design the specs declare (none here)
    assert index["claims"] == {"leave_out_still_improving": True, "design": None}
    design = study_design(SCALES["standard"]).to_json()
    write_index(tmp_path, {"dsprites": tmp_path / "dsprites"}, {"dsprites": {"claims": design}},
                leave_out_still_improving=False)
    assert read_json(tmp_path / "sweep.json")["claims"] == {"leave_out_still_improving": False, "design": design}
    assert design["primary_setting"] == {"dataset": "natural-32", "convention": "additive",
                                         "neural_family": "+perceptual"}
    assert design["rate_windows"] == {"dsprites-64": [10.0, 14.0], "natural-32": [20.0, 50.0]}


def test_demo_spec_is_accepted_by_the_sweep_package(tmp_path):
    from vaelens.sweep.spec import expand, load_spec

    tasks = expand(load_spec(demo_spec(tmp_path / "net.safetensors")), tmp_path)
    assert len(tasks) == 18


@pytest.mark.slow  # every loss family through the real sweep, analysis, claims and report
def test_a_tiny_study_runs_every_family_end_to_end(tmp_path, monkeypatch):
    """All four loss families (adversarial included) through the real sweep, analysis, claims and report."""
    from vaelens.features.fit import fit_feature_network
    from vaelens.features.store import save_feature_network

    monkeypatch.setenv("VAELENS_CACHE", str(tmp_path / "cache"))
    from vaelens.config import DataConfig

    network, metadata = fit_feature_network(DataConfig(name="dsprites", subset=256), "supervised", 5,
                                            batch_size=16, widths=(4, 8, 8, 8), eval_images=32, progress=False)
    features = save_feature_network(network, metadata, tmp_path / "net.safetensors")
    scale = StudyScale(steps=4, subset=128, betas=(1.0,), seeds=(0, 1), channels=4, hidden_dim=16, batch_size=8,
                       analysis_images=32, disc_channels=4, disc_layers=2, disentanglement=False)
    spec = study_spec("dsprites", scale, perceptual=f"features:{features}")
    spec["zip"][0] = {key: values[:4] for key, values in spec["zip"][0].items()}  # the additive convention
    report = run_study({"dsprites": spec}, tmp_path / "study", progress=False)
    index = json.loads((tmp_path / "study" / "sweep.json").read_text())
    assert [run["status"] for run in index["runs"]] == ["finished"] * 8
    families = {_family(variant) for variant in _variants(spec)}
    assert families == set(FAMILIES)
    claims = json.loads((tmp_path / "study" / "claims.json").read_text())
    compared = {row["neural_family"] for row in claims["results"] if row["n_pairs"] == 2}
    assert report.page.is_file() and compared == {"+perceptual", "+adversarial", "+both"}
    # the study's declared design decides: its primary setting is natural patches, which this cut lacks, so every
    # dSprites endpoint is secondary and the page says the primary family is empty rather than picking another
    assert claims["design"]["declared_by"].startswith("the study spec")
    assert claims["design"]["primary_setting"]["dataset"] == "natural-64"
    assert {row["test_family"] for row in claims["results"] if row["beta"] == "all"} == {"secondary", "exploratory"}
    page = report.page.read_text()
    assert "Primary family (one endpoint per claim, Holm): no row" in page and "<td>secondary</td>" in page


def test_ldm_runs_use_latent_diffusions_own_perceptual_weight():
    """ldm broadcasts w_p * d_perc to every pixel: the additive per-image weight would be ~10^4 times too strong."""
    for variant in _variants(study_specs("quick")["natural"]):
        expected = 1.0 if variant["loss.convention"] == "ldm" else "auto"  # latent diffusion's w_p; calibrated
        assert variant["loss.perceptual_weight"] == expected


def _runs(spec):
    """(variant with its beta, seed) of every run of a study spec, beta from the grid or the zipped axis."""
    betas = spec["grid"].get("loss.beta", [None])
    return [({**variant, "loss.beta": variant.get("loss.beta", beta)}, seed)
            for beta, seed, variant in itertools.product(betas, spec["grid"]["train.seed"], _variants(spec))]


def test_standard_study_meets_the_study_issue_minimums():
    scale = SCALES["standard"]
    assert len(scale.betas) >= 4 and len(scale.seeds) >= 5
    specs = study_specs("standard")
    settings = {dataset: {(v["loss.convention"], v["loss.likelihood"], _family(v)) for v in _variants(spec)}
                for dataset, spec in specs.items()}
    natural = settings["natural"]
    # every family under the additive convention, the calibrated convex mix, ldm and the learned-sigma Gaussian
    assert {f for c, _, f in natural if c == "additive"} == set(FAMILIES)
    assert ("convex", "gaussian", "+perceptual") in natural
    assert {("ldm", "laplace", "pointwise"), ("ldm", "laplace", "+perceptual")} <= natural
    assert {("additive", "gaussian_learned", "pointwise"), ("additive", "gaussian_learned", "+perceptual")} <= natural
    assert {("additive", "bernoulli", "pointwise"), ("additive", "bernoulli", "+perceptual")} <= settings["dsprites"]
    for dataset, spec in specs.items():
        overrides = spec["overrides"]
        steps = scale.for_dataset("steps", dataset)
        assert overrides["model.name"] == "mlp" and overrides["train.steps"] == steps
        assert overrides["train.lr_schedule"] == "cosine"
        # enough records near 80% and 100% of the steps for the convergence figure's window means
        assert steps // overrides["train.log_every"] >= 40
        assert spec["analysis"]["probe"] is True
        runs = _runs(spec)
        # the pointwise families everywhere, and the +perceptual ones on natural patches, span the whole grid,
        # from high rate to near collapse (dSprites +perceptual is cut to the betas where it reaches the plateau)
        for variant, _ in runs:
            if _family(variant) == "pointwise" or (_family(variant) == "+perceptual" and dataset == "natural"):
                assert {v["loss.beta"] for v, _ in runs if v["loss.convention"] == variant["loss.convention"]
                        and v["loss.likelihood"] == variant["loss.likelihood"]
                        and _family(v) == _family(variant)} == set(scale.betas)
        # at least five seeds of every (setting, beta)
        seeds = {}
        for variant, seed in runs:
            seeds.setdefault(tuple(sorted(map(str, variant.items()))), set()).add(seed)
        assert min(map(len, seeds.values())) >= 5
        # every run keeps a checkpoint at exactly 0.8 T for the paired plateau check, whatever its length
        variants = [variant for variant, _ in runs]
        for variant in variants:
            length = variant.get("train.steps", steps)
            assert 4 * variant.get("train.checkpoint_every", overrides["train.checkpoint_every"]) == 0.8 * length
    dsprites_perceptual = {v["loss.beta"] for v, _ in _runs(specs["dsprites"]) if _family(v) == "+perceptual"}
    assert len(dsprites_perceptual) >= 2  # a matched-rate curve needs 2
    assert specs["natural"]["overrides"]["data.image_size"] == 32
    assert specs["natural"]["overrides"]["data.subset"] is None
    assert specs["dsprites"]["overrides"]["data.subset"] == 20_000
    for variant, seed in _runs(specs["natural"]):  # every run resolves to a valid config
        config = resolve("natural-bvae", None, [f"{k}={'null' if v is None else v}" for k, v in
                                                {**specs["natural"]["overrides"], **variant}.items()])
        assert config.loss.beta == variant["loss.beta"]


def test_family_betas_run_a_family_at_fewer_betas_and_nothing_else_changes():
    base = dataclasses.replace(SCALES["quick"], betas=(1.0, 2.0, 4.0, 8.0))
    cut = dataclasses.replace(base, family_betas={"natural": {"+adversarial": (2.0, 8.0), "+both": (8.0,)}})
    full, fewer = study_spec("natural", base), study_spec("natural", cut)
    assert "loss.beta" not in fewer["grid"] and fewer["grid"]["train.seed"] == full["grid"]["train.seed"]
    full_runs = {(tuple(sorted(map(str, v.items()))), s) for v, s in _runs(full)}
    fewer_runs = {(tuple(sorted(map(str, v.items()))), s) for v, s in _runs(fewer)}
    assert fewer_runs < full_runs  # the same runs, some left out
    kept = {(_family(v), v["loss.beta"]) for v, _ in _runs(fewer)}
    assert {beta for family, beta in kept if family == "+adversarial"} == {2.0, 8.0}
    assert {beta for family, beta in kept if family == "+both"} == {8.0}
    assert {beta for family, beta in kept if family == "pointwise"} == {1.0, 2.0, 4.0, 8.0}
    conventions = {family: sum(_family(v) == family for v in _variants(full)) for family in ("+adversarial", "+both")}
    # 3 seeds; each convention's +adversarial drops 2 of the 4 betas, its +both 3
    assert len(_runs(fewer)) == len(_runs(full)) - 3 * (2 * conventions["+adversarial"] + 3 * conventions["+both"])
    with pytest.raises(ValueError, match="family_betas"):
        study_spec("natural", dataclasses.replace(base, family_betas={"natural": {"+both": (3.0,)}}))
    assert study_spec("dsprites", cut)["grid"]["loss.beta"] == list(base.betas)  # only the data set named


def test_a_cut_that_drops_a_neural_settings_baseline_is_refused():
    from vaelens.study import study_pairs

    with pytest.raises(ValueError, match="without their pointwise baseline"):
        study_pairs("natural", cut={"natural": (("ldm", "+perceptual"), ("additive", "pointwise"))})
    assert study_pairs("natural", cut={"natural": (("convex", "+perceptual"), ("additive", "pointwise"))}) == [
        ("additive", "pointwise"), ("convex", "+perceptual")]


def test_variant_steps_lengthen_only_the_pairs_named_and_keep_every_other_run_id():
    from vaelens.sweep.spec import SweepSpec, _validate, expand

    base = dataclasses.replace(SCALES["quick"], steps=200, family_betas={"natural": {"+both": (4.0,)}})
    longer = dataclasses.replace(base, variant_steps={"natural": {("additive", "+both"): 500,
                                                                  ("additive", "pointwise"): 300}})

    def tasks(scale, dataset):
        lengths = ("train.steps", "train.checkpoint_every", "train.log_every", "loss.disc_start")
        return {tuple(sorted((k, str(v)) for k, v in task.axes.items() if k not in lengths)): task
                for task in expand(_validate(SweepSpec(**study_spec(dataset, scale)), dataset))}

    for dataset in ("natural", "dsprites"):  # natural: beta in the zipped axis; dsprites: beta on the grid
        before, after = tasks(base, dataset), tasks(longer, dataset)
        assert before.keys() == after.keys()
        for key, task in after.items():
            config = task.config
            pair = (config.loss.convention, _family({"loss.perceptual": config.loss.perceptual,
                                                     "loss.disc_weight": config.loss.disc_weight}))
            expected = {("additive", "+both"): 500, ("additive", "pointwise"): 300}.get(pair) if dataset == "natural" \
                else None
            if expected is None:
                assert task.run_id == before[key].run_id  # untouched pairs are the same runs
                assert config.train.steps == 200
            else:
                assert (config.train.steps, config.train.checkpoint_every, config.loss.disc_start) == (
                    expected, expected // 5, expected // 4)
                assert config.train.log_every == max(1, expected // base.log_records)
    # the convex mix has no pointwise-only form, so the study has no such pair to lengthen
    with pytest.raises(ValueError, match=r"variant_steps names \[\('convex', 'pointwise'\)\]"):
        study_spec("natural", dataclasses.replace(base, variant_steps={"natural": {("convex", "pointwise"): 500}}))
