"""The power planner against closed forms: the t test's noncentral-t power, the TOST power integrated over the sample
sd, the Holm / Bonferroni brackets of a family's seed count, the scalar step-down and verdict it vectorises, and the
`vaelens plan` command on a claims.json."""

import json
import math

import numpy as np
import pytest
from scipy import integrate, stats

from vaelens.claims_design import DEFAULT_DESIGN
from vaelens.cli import main
from vaelens.report.claim_rows import ClaimRow, ClaimsReport, PlateauOutcome
from vaelens.report.planner import (
    EndpointSpread,
    adjust_family,
    family_p_values,
    grouped_step_down,
    mc_error,
    plan,
    plan_text,
    power,
    power_curve,
    primary_spreads,
    seeds_needed,
    spreads_from_claims,
    standard_draws,
)
from vaelens.report.statistics import equivalence_test, step_down_adjust, t_test, verdict

ALPHA = DEFAULT_DESIGN.alpha
SETTING = "natural-32 additive +perceptual"
PILOT = (  # the published study's primary endpoints (C1's spread is a placeholder): effect, dz, bound, sign
    ("C1", "matched_beta", "rate", 1.0, 1.5, 0.5, "negative"),
    ("C2", "matched_beta", "isoscore_active", -0.135, 1.9, 0.05, "positive"),
    ("C3", "matched_beta", "variance_entropy", 0.044, 0.9, 0.02, "positive"),
    ("C4", "matched_rate", "isoscore_active", -0.107, 2.5, 0.05, "non-zero"),
)


def _spread(effect: float, sd: float = 1.0, bound=None, direction: int = 0, claim: str = "C4") -> EndpointSpread:
    return EndpointSpread(claim, "matched_rate", "isoscore_active", SETTING, effect, sd, 5, bound, direction)


def _row(claim, comparison, metric, effect, sd, n, bound, sign, family="primary", beta="all") -> ClaimRow:
    return ClaimRow(claim, comparison, metric, None, "units", "natural-32", "additive", "additive", "+perceptual", beta,
                    effect, None, None, None, n, list(range(n)), None, sign, test_family=family, sd=sd, bound=bound)


def _report(rows: list[ClaimRow]) -> ClaimsReport:
    return ClaimsReport(version=4, units="nats", confidence=0.95, alpha=ALPHA, comparisons={}, interval="",
                        multiplicity={}, verdict_rule="", plateau=PlateauOutcome("", True, [], []), claims={},
                        results=rows)


def pilot_report() -> ClaimsReport:
    """The published pilot's primary rows (5 seeds each, sd = effect / dz), plus rows a plan must not read."""
    rows = [_row(claim, comparison, metric, effect, abs(effect) / dz, 5, bound, sign)
            for claim, comparison, metric, effect, dz, bound, sign in PILOT]
    rows.append(_row("C2", "matched_beta", "isoscore_active", 0.3, 0.01, 5, 0.05, "positive", beta=4.0))  # per beta
    rows.append(_row("C3", "matched_rate", "variance_entropy", 0.3, 0.01, 5, None, "non-zero", family="exploratory"))
    return _report(rows)


def _t_power(dz: float, seeds: int, alpha: float) -> float:
    """Analytic power of the two-sided one-sample t test on the effect's side: P(T > t_crit), T noncentral t."""
    critical = stats.t.ppf(1 - alpha / 2, seeds - 1)
    return float(stats.nct.sf(critical, seeds - 1, abs(dz) * math.sqrt(seeds)))


def _fewest_seeds(dz: float, alpha: float, target: float) -> int:
    return next(seeds for seeds in range(2, 100) if _t_power(dz, seeds, alpha) >= target)


@pytest.mark.parametrize("effect, seeds", [(1.0, 6), (-0.8, 8), (2.0, 3)])
def test_one_endpoint_alone_has_the_noncentral_t_power(effect, seeds):
    replications = 4000
    (row,) = power([_spread(effect, direction=-1)], seeds, DEFAULT_DESIGN, replications=replications)
    expected = _t_power(effect, seeds, ALPHA)
    assert abs(row.decide_effect - expected) <= 1.5 * mc_error(expected, replications)
    assert row.decided_outcome == ("supported" if effect < 0 else "contradicted")


def test_a_zero_effect_without_bound_is_decided_at_rate_alpha():
    replications = 4000
    (alone,) = power([_spread(0.0)], 5, DEFAULT_DESIGN, replications=replications)
    assert abs(alone.decide_effect - ALPHA) <= 1.5 * mc_error(ALPHA, replications)  # the t test is exact
    assert alone.decide_no_effect is None
    family = power([_spread(0.0, claim=f"C{k}") for k in range(1, 5)], 5, DEFAULT_DESIGN, replications=replications)
    # Holm over four true nulls: each is decided at about alpha / 4, and at most alpha
    assert all(row.decide_effect <= ALPHA / 4 + mc_error(ALPHA / 4, replications) for row in family)
    assert sum(row.decide_effect for row in family) > ALPHA / 2


def test_grouped_step_down_equals_step_down_adjust_row_by_row():
    generator = np.random.default_rng(5)
    p_values = np.round(generator.uniform(0, 0.2, size=(200, 6)) ** 2 * 25, 2).clip(0, 1)  # rounding makes ties
    groups = ["C1", "C2", "C3", "C1", "C3", "C4"]
    for grouping in (groups, None):
        adjusted = grouped_step_down(p_values, grouping)
        expected = [step_down_adjust(list(row), grouping) for row in p_values]
        np.testing.assert_allclose(adjusted, expected, rtol=0, atol=1e-15)
    assert (grouped_step_down(p_values, groups) != grouped_step_down(p_values)).any()  # the grouping matters


def test_the_vectorised_family_is_the_scalar_procedure_on_each_replication():
    spreads = [_spread(0.3, 0.4, 0.2, 1, "C1"), _spread(-0.5, 0.5, None, 1, "C2"), _spread(0.05, 0.1, 0.1, 0, "C4")]
    replications, seeds = 150, 4
    z = standard_draws(replications, len(spreads), seeds)
    effects, sds = np.array([s.effect for s in spreads]), np.array([s.sd for s in spreads])
    differences = effects + sds * z
    bounds, claims = [s.bound for s in spreads], [s.claim for s in spreads]
    vector = adjust_family(*family_p_values(differences.mean(0), differences.std(0, ddof=1), seeds, bounds), claims)
    decided = np.zeros(len(spreads))
    for r in range(replications):
        columns = [differences[:, r, k] for k in range(len(spreads))]
        tests = [t_test(c) for c in columns] + [equivalence_test(c, b) for c, b in zip(columns, bounds) if b]
        adjusted = step_down_adjust(tests, claims + [c for c, b in zip(claims, bounds) if b])
        scalar_equivalence = iter(adjusted[len(spreads):])
        for k, spread in enumerate(spreads):
            equivalence = next(scalar_equivalence) if spread.bound else None
            assert vector[0][r, k] == pytest.approx(adjusted[k], rel=1e-9, abs=1e-12)
            if equivalence is not None:
                assert vector[1][r, k] == pytest.approx(equivalence, rel=1e-9, abs=1e-12)
            outcome = verdict(adjusted[k], columns[k].mean(), spread.direction, ALPHA, equivalence)
            decided[k] += outcome in ("supported", "contradicted") and np.sign(columns[k].mean()) == np.sign(
                spread.effect)
    rows = power(spreads, seeds, DEFAULT_DESIGN, replications=replications)
    np.testing.assert_allclose([row.decide_effect for row in rows], decided / replications, atol=1e-12)
    assert 0 < decided.min() < replications  # neither trivially never nor always decided


def _tost_no_effect_power(bound_over_sd: float, seeds: int, alpha: float) -> float:
    """P(outcome "no effect") of one endpoint at true effect 0: the sample mean within b - t_(1-alpha) s/sqrt n of 0
    (the TOST decides; a difference decided as well still reads no effect), integrated over the sample sd s."""
    degrees = seeds - 1
    one_sided = stats.t.ppf(1 - alpha, degrees)

    def given_sd(u):  # u = s / sigma; the mean is Normal(0, sigma^2 / n)
        half_width = bound_over_sd - one_sided * u / math.sqrt(seeds)
        density = stats.chi.pdf(u * math.sqrt(degrees), degrees) * math.sqrt(degrees)
        return density * max(0.0, 2 * stats.norm.cdf(half_width * math.sqrt(seeds)) - 1)

    return integrate.quad(given_sd, 0, 10, limit=200)[0]


def test_a_bound_makes_decide_no_effect_rise_with_seeds_as_the_tost_power_does():
    replications = 4000
    curve = power_curve([_spread(0.0, 1.0, bound=1.0)], [3, 5, 8, 12, 20], DEFAULT_DESIGN, replications)
    no_effect = [curve[n][0].decide_no_effect for n in (3, 5, 8, 12, 20)]
    assert no_effect == sorted(no_effect) and no_effect[0] < 0.2 and no_effect[-1] > 0.9
    for n, value in zip((3, 5, 8, 12, 20), no_effect):
        expected = _tost_no_effect_power(1.0, n, ALPHA)
        assert abs(value - expected) <= 2 * mc_error(expected, replications) + 1e-3, n


def test_power_rises_with_seeds():
    curve = power_curve([_spread(0.8, direction=1, claim="C2"), _spread(-1.0, claim="C4")], range(3, 16),
                        DEFAULT_DESIGN, replications=2000)
    for k in range(2):
        values = [curve[n][k].decide_effect for n in range(3, 16)]
        assert all(later >= earlier - 0.01 for earlier, later in zip(values, values[1:])), values
        assert values[-1] - values[0] > 0.5
    assert curve[3][0].decide_effect > 0  # min_seeds is 3: seeds 3 decide
    assert power([_spread(5.0)], 2, DEFAULT_DESIGN)[0].decide_effect == 0  # below min_seeds: no decision


def test_seeds_needed_for_four_endpoints_lies_between_the_unadjusted_and_bonferroni_counts():
    spreads = [_spread(2.5, claim=f"C{k}") for k in range(1, 5)]
    lowest, highest = _fewest_seeds(2.5, ALPHA, 0.8), _fewest_seeds(2.5, ALPHA / 4, 0.8)
    assert lowest < highest  # the bracket says something
    needed = seeds_needed(spreads, DEFAULT_DESIGN, 0.8, max_seeds=12, replications=2000)
    assert all(lowest <= need.effect_seeds <= highest for need in needed), (lowest, highest, needed)
    assert all(need.no_effect_seeds is None for need in needed)
    unreachable = seeds_needed([_spread(0.05)], DEFAULT_DESIGN, 0.9, max_seeds=8, replications=500)
    assert unreachable[0].effect_seeds is None


def test_spreads_read_the_primary_pooled_rows_with_a_spread():
    report = pilot_report()
    report.results.append(_row("C4", "matched_rate", "isoscore_active", 0.1, None, 1, 0.05, "non-zero"))
    spreads, skipped = primary_spreads(report, DEFAULT_DESIGN)
    assert [(s.claim, s.direction, s.bound) for s in spreads] == [("C1", -1, 0.5), ("C2", 1, 0.05), ("C3", 1, 0.02),
                                                                   ("C4", 0, 0.05)]
    assert spreads[1].sd == pytest.approx(0.135 / 1.9) and spreads[1].setting == SETTING
    assert [item.claim for item in skipped] == ["C4"] and "1 seed" in skipped[0].reason
    assert spreads_from_claims(report, DEFAULT_DESIGN) == spreads


def test_plan_text_names_every_number():
    result = plan(pilot_report(), DEFAULT_DESIGN, seed_counts=(3, 5, 10), replications=1000, max_seeds=40)
    text = plan_text(result)
    assert "independent endpoints, normal differences, Monte Carlo with 1000 replications (rng seed 0): power " \
           "within +-2 sqrt(p(1-p)/R)" in text
    for row in result.rows:
        no_effect = "-" if row.decide_no_effect is None else f"{row.decide_no_effect:.2f}"
        assert f"{row.decide_effect:.2f} / {no_effect}" in text
    for claim, comparison, metric, effect, dz, bound, _ in PILOT:
        line = next(line for line in text.splitlines() if line.startswith(f"{claim} {comparison} {metric}  "))
        assert f"{effect:+.4g}" in line and f"{abs(effect) / dz:.4g}" in line and f"{bound:.4g}" in line
    seeds_line = text.splitlines()[-1]
    c4 = [need for need in result.needed if need.claim == "C4"]
    assert seeds_line.split()[3:] == [str(need.effect_seeds) for need in c4] + [
        str(need.no_effect_seeds) if need.no_effect_seeds else ">40" for need in c4]
    assert len(result.rows) == 4 * 3 and len(result.needed) == 4 * 2
    assert json.loads(json.dumps(result.to_json()))["rows"][0]["seed_count"] == 3


def test_plan_command_prints_the_table_and_writes_json(tmp_path, capsys):
    claims = tmp_path / "claims.json"
    claims.write_text(json.dumps(pilot_report().to_json()))
    out = tmp_path / "plan.json"
    assert main(["plan", str(claims), "--seeds", "3,8", "--replications", "500", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "Power plan of the primary family: 4 endpoints" in printed and "C3 matched_beta variance_entropy" in printed
    assert "3 seeds" in printed and "8 seeds" in printed and "500 replications" in printed
    written = json.loads(out.read_text())
    assert written["seed_counts"] == [3, 8] and len(written["rows"]) == 8


@pytest.mark.parametrize("make, expected", [
    (lambda tmp: tmp / "absent", "does not exist"),
    (lambda tmp: tmp, "no sweep.json"),
    (lambda tmp: _write(tmp / "claims.json", _report([_row("C1", "matched_beta", "rate", 1.0, 1.0, 5, 0.5, "negative",
                                                           family="exploratory")]).to_json()), "no primary row"),
])
def test_plan_command_errors_are_one_line_with_exit_code_2(tmp_path, capsys, make, expected):
    assert main(["plan", str(make(tmp_path))]) == 2
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("vaelens plan: error: ") and expected in lines[0], lines


def _write(path, payload):
    path.write_text(json.dumps(payload))
    return path
