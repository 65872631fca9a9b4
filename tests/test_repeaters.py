"""Repeater spacing model: checked against full enumeration and an independent Eq. 9/10."""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import networkx as nx
import numpy as np
import pandas as pd
import pytest

from planner import physics
from planner.stages.repeater_tables import chain_tables, hop_factor_table
from solvers import repeaters
from solvers.base import SolverOptions, SolveStatus
from solvers.repeaters import (
    ChainTables,
    RepeaterInfeasible,
    RepeaterInputError,
    SpacingData,
    best_single_rate,
    candidate_link_paths,
    drop_dominated_demands,
    evaluate_spacing,
    heuristic_spacing,
    rate_factor_nonincreasing,
    rate_upper_bounds,
)


@dataclass(frozen=True)
class Chain:
    """Physics of a test instance: the values the independent formulas below read, and the
    planner's physics parameter object (:attr:`physics`) the chain tables are built from."""

    alpha_db_per_km: float
    q: float
    memory: float
    speed_km_per_s: float = 2.0e5
    t_mea_s: float = 100e-6
    t_ret_s: float = 1040e-6

    @property
    def physics(self) -> physics.PhysicsParameters:
        return physics.PhysicsParameters(
            alpha_db_per_km=self.alpha_db_per_km,
            q_swap=self.q,
            speed_km_per_s=self.speed_km_per_s,
            t_mea_s=self.t_mea_s,
            t_ret_s=self.t_ret_s,
        )


def tables(links: pd.DataFrame, par: Chain) -> ChainTables:
    """The chain tables the planner hands the model for ``links`` under ``par``."""
    return chain_tables(links, par.physics, memory_units=par.memory)


def solve(links: pd.DataFrame, demands: pd.DataFrame, par: Chain, **kw):
    """:func:`solvers.repeaters.solve_spacing` with the planner's chain tables of ``par``."""
    return repeaters.solve_spacing(links, demands, tables(links, par), **kw)


def prepare(links: pd.DataFrame, demands: pd.DataFrame, par: Chain, **kw) -> SpacingData:
    """:func:`solvers.repeaters.prepare_spacing_data` with the planner's chain tables of ``par``."""
    return repeaters.prepare_spacing_data(links, demands, tables(links, par), **kw)


# ---------------------------------------------------------------------------
# Independent formulas, written from the paper text (Eqs. 7-10)
# ---------------------------------------------------------------------------


def eq9_ratio(k: int, p: float, q: float, m: float) -> float:
    if k == 1:
        return m * p
    n = math.ceil(math.log2(k)) - 1
    if k % 2 == 0:
        return m * k * p * q ** (n + 1) / (2 * (k - 2**n) + q * (2 ** (n + 1) - k))
    return m * (k - 1) * p * q ** (n + 1) / (2 * (k - 2**n) + q * (2 ** (n + 1) - k - 1))


def eq10_latency(segments_km: list[float], p: float, par: Chain) -> float:
    t = sum(d * 10 ** (par.alpha_db_per_km * d / 10) / par.speed_km_per_s for d in segments_km)
    k = len(segments_km)
    return t / eq9_ratio(k, p, par.q, par.memory) + k * (par.t_mea_s + par.t_ret_s)


def demand_metrics(links, paths, reps, choice, par):
    """(rate, latency) of every demand for a design, from scratch."""
    out = {}
    length = dict(zip(links["link"], links["length_km"], strict=True))
    for d, cands in paths.items():
        path = cands[choice[d]]
        segs = [length[lid] / (reps[lid] + 1) for lid in path for _ in range(reps[lid] + 1)]
        p = min(10 ** (-par.alpha_db_per_km * s / 10) for s in segs)
        out[d] = (eq9_ratio(len(segs), p, par.q, par.memory), eq10_latency(segs, p, par))
    return out


def enumerate_designs(links, paths, par):
    """Every (repeaters per link, path per demand) combination with its cost and metrics."""
    ids = list(links["link"])
    ranges = [range(int(n) + 1) for n in links["max_repeaters"]]
    cost = dict(zip(links["link"], links["cost_per_repeater"], strict=True))
    dem = list(paths)
    for reps_t in itertools.product(*ranges):
        reps = dict(zip(ids, reps_t, strict=True))
        c = sum(cost[lid] * n for lid, n in reps.items())
        for ch in itertools.product(*[range(len(paths[d])) for d in dem]):
            choice = dict(zip(dem, ch, strict=True))
            yield reps, choice, c, demand_metrics(links, paths, reps, choice, par)


def random_instance(seed: int, *, n_links: int = 4, n_demands: int = 3, n_max: int = 3, k_paths: int = 2):
    rng = np.random.default_rng(seed)
    links = pd.DataFrame(
        {
            "link": [f"L{i}" for i in range(n_links)],
            "length_km": rng.uniform(40, 160, n_links).round(1),
            "cost_per_repeater": rng.choice([1.0, 2.0, 3.0], n_links),
            "max_repeaters": rng.integers(1, n_max + 1, n_links),
        }
    )
    paths = {}
    for d in range(n_demands):
        cands = []
        for _ in range(int(rng.integers(1, k_paths + 1))):
            size = int(rng.integers(1, min(3, n_links) + 1))
            cands.append(list(rng.choice(links["link"], size, replace=False)))
        paths[f"D{d}"] = cands
    return links, paths


def chain(*, alpha_db_per_km: float, q: float, memory: float) -> Chain:
    """The physics of a test instance."""
    return Chain(alpha_db_per_km=alpha_db_per_km, q=q, memory=memory)


PAR = chain(alpha_db_per_km=0.2, q=0.8, memory=2.0)


def demands_table(paths, **cols):
    df = pd.DataFrame({"demand": list(paths), "paths": list(paths.values())})
    for key, values in cols.items():
        df[key] = [values[d] for d in paths]
    return df


# ---------------------------------------------------------------------------
# Formula agreement
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("q", [0.3, 0.6, 0.9, 1.0])
def test_hop_factor_table_matches_eq9(q):
    g = hop_factor_table(69, q)
    assert len(g) == 70
    for k in range(1, 70):
        assert g[k] == pytest.approx(eq9_ratio(k, 1.0, q, 1.0), rel=1e-12)
    assert g[2] == pytest.approx(q)


@pytest.mark.parametrize(("q", "memory"), [(0.5, 4.0), (0.9, 1.0), (1.0, 3.0)])
def test_chain_tables_match_eqs_7_to_10(q, memory):
    """Every number the planner hands the model, against the paper's formulas written out here."""
    par = Chain(alpha_db_per_km=0.3, q=q, memory=memory)
    links = pd.DataFrame({"link": ["a", "b"], "length_km": [80.0, 20000.0], "max_repeaters": [3, 2]})
    tab = tables(links, par)
    assert tab.max_hops == 4 + 3 + 1  # every chain over the two links
    for k in range(1, tab.max_hops + 1):
        assert tab.rate_factor[k] == pytest.approx(eq9_ratio(k, 1.0, q, memory), rel=1e-12)
        assert tab.log_rate_factor[k] == pytest.approx(math.log(eq9_ratio(k, 1.0, q, memory)), rel=1e-12)
        assert tab.swap_latency_s[k] == pytest.approx(k * (par.t_mea_s + par.t_ret_s), rel=1e-12)
    opts = tab.options.set_index(["link", "repeaters"])
    for lid, length, n_max in links.itertuples(index=False):
        for n in range(n_max + 1):
            seg = length / (n + 1)
            row = opts.loc[(lid, n)]
            assert row["log_p"] == pytest.approx(-par.alpha_db_per_km * seg / 10 * math.log(10), rel=1e-12)
            assert row["p"] == pytest.approx(10 ** (-par.alpha_db_per_km * seg / 10), rel=1e-9, abs=1e-300)
            if par.alpha_db_per_km * seg / 10 < 300:
                t_seg = seg * 10 ** (par.alpha_db_per_km * seg / 10) / par.speed_km_per_s
                assert row["time_s"] == pytest.approx((n + 1) * t_seg, rel=1e-12)
    # 20 000 km at 0.3 dB/km: p underflows to 0 and the time overflows; the log stays finite (-1 382 nats)
    assert opts.loc[("b", 0), "p"] == 0.0 and math.isfinite(opts.loc[("b", 0), "log_p"])
    assert opts.loc[("b", 0), "time_s"] == math.inf


def test_chain_rate_matches_planner_physics():
    """The model's evaluation of a design (tables looked up, no formula) agrees with planner.physics."""
    for q in (0.5, 0.9):
        par = chain(alpha_db_per_km=0.2, q=q, memory=4.0)
        for k in range(1, 40):
            links = pd.DataFrame({"link": ["a"], "length_km": [60.0], "max_repeaters": [k - 1]})
            data = prepare(links, pd.DataFrame({"demand": ["d"], "path": [["a"]]}), par)
            _, dem = evaluate_spacing(data, {"a": k - 1})
            p = float(physics.link_success_probability(60.0 / k, alpha_db_per_km=0.2))
            expected = physics.chain_distribution_ratio(k, p=p, q=q, memory=4)
            assert dem.at[0, "rate"] == pytest.approx(float(expected), rel=1e-12)
            lat = physics.chain_latency_s([60.0 / k] * k, q=q, memory=4, alpha_db_per_km=0.2)
            assert dem.at[0, "latency_s"] == pytest.approx(float(lat), rel=1e-12)
    p = physics.link_success_probability(75.0, alpha_db_per_km=0.2)
    assert float(p) == pytest.approx(10 ** (-1.5))


def _made_up_tables(links: pd.DataFrame, rng: np.random.Generator) -> ChainTables:
    """Chain tables with random numbers behind which there is no formula: ``p`` rising with the
    repeaters of a link, a falling rate factor, random segment times and swap latencies."""
    rows = []
    for lid, n_max in zip(links["link"], links["max_repeaters"], strict=True):
        p = np.sort(rng.uniform(0.01, 0.6, int(n_max) + 1))
        for n in range(int(n_max) + 1):
            rows.append({"link": lid, "repeaters": n, "p": p[n], "log_p": math.log(p[n]), "time_s": rng.uniform(0, 1)})
    k_max = int((links["max_repeaters"] + 1).sum()) + 1
    factor = np.concatenate([[0.0], np.sort(rng.uniform(0.05, 3.0, k_max))[::-1]])
    with np.errstate(divide="ignore"):
        return ChainTables(pd.DataFrame(rows), factor, np.log(factor), rng.uniform(0, 0.01) * np.arange(k_max + 1))


@pytest.mark.parametrize("seed", range(4))
def test_solver_uses_exactly_the_numbers_it_is_given(seed):
    """Made-up chain tables (no physics behind them): the least cost equals an enumeration over the
    same numbers (rate = worst p x rate factor of the hop count), and the reported rates and
    latencies are those numbers combined as the model states."""
    rng = np.random.default_rng(100 + seed)
    links, paths = random_instance(300 + seed)
    tab = _made_up_tables(links, rng)
    opt = tab.options.set_index(["link", "repeaters"])
    cost = dict(zip(links["link"], links["cost_per_repeater"], strict=True))
    ids = list(links["link"])

    def chain_figures(reps, path):
        k = sum(reps[lid] + 1 for lid in path)
        rate = min(opt.at[(lid, reps[lid]), "p"] for lid in path) * tab.rate_factor[k]
        latency = sum(opt.at[(lid, reps[lid]), "time_s"] for lid in path) / rate + tab.swap_latency_s[k]
        return k, rate, latency

    designs = [
        dict(zip(ids, r, strict=True)) for r in itertools.product(*[range(int(n) + 1) for n in links["max_repeaters"]])
    ]
    best_alone = {d: max(chain_figures(r, p)[1] for r in designs for p in paths[d]) for d in paths}
    target = {d: 0.7 * best_alone[d] for d in paths}
    feasible = [
        sum(cost[lid] * n for lid, n in r.items())
        for r in designs
        if all(max(chain_figures(r, p)[1] for p in paths[d]) >= target[d] * (1 - 1e-9) for d in paths)
    ]
    res = repeaters.solve_spacing(links, demands_table(paths, rate_target=target), tab)
    assert res.objective == pytest.approx(min(feasible))
    reps = dict(zip(res.tables["links"]["link"], res.tables["links"]["repeaters"], strict=True))
    for row in res.tables["demands"].itertuples():
        k, rate, latency = chain_figures(reps, paths[row.demand][row.path_index])
        assert row.hops == k and row.rate == pytest.approx(rate, rel=1e-12)
        assert row.latency_s == pytest.approx(latency, rel=1e-12)
        assert row.rate >= target[row.demand] * (1 - 1e-9)


def test_solution_tables_match_planner_physics():
    """Rates and latencies of a solved design agree with planner.physics recomputed per demand."""
    links, paths = random_instance(11, n_links=4, n_demands=3)
    par = chain(alpha_db_per_km=0.2, q=0.8, memory=2.0)
    res = solve(links, demands_table(paths), par, mode="max_min_rate", budget=4.0)
    seg = dict(zip(res.tables["links"]["link"], res.tables["links"]["segment_km"], strict=True))
    hops = dict(zip(res.tables["links"]["link"], res.tables["links"]["hops"], strict=True))
    for row in res.tables["demands"].itertuples():
        segments = [seg[lid] for lid in row.path for _ in range(hops[lid])]
        p = float(physics.link_success_probability(max(segments), alpha_db_per_km=0.2))
        rate = float(physics.chain_distribution_ratio(len(segments), p=p, q=0.8, memory=2.0))
        lat = float(physics.chain_latency_s(segments, q=0.8, memory=2.0, alpha_db_per_km=0.2))
        assert row.hops == len(segments)
        assert row.rate == pytest.approx(rate, rel=1e-9)
        assert row.latency_s == pytest.approx(lat, rel=1e-9)


# ---------------------------------------------------------------------------
# Against enumeration
# ---------------------------------------------------------------------------


MIN_COST_SEEDS, LATENCY_SEEDS = range(6), range(5)


def _min_cost_case(seed: int) -> tuple[pd.DataFrame, dict, dict[str, float], float]:
    """Instance, rate targets and the enumerated least cost (inf when infeasible)."""
    links, paths = random_instance(seed)
    # targets: a fraction of each demand's best rate alone, so that most instances are feasible
    data = prepare(links, demands_table(paths), PAR)
    target = {d: 0.6 * best_single_rate(data, d) for d in paths}
    best = math.inf
    for _reps, _choice, c, met in enumerate_designs(links, paths, PAR):
        if all(met[d][0] >= target[d] for d in paths):
            best = min(best, c)
    return links, paths, target, best


def _latency_case(seed: int) -> tuple[pd.DataFrame, dict, float, float]:
    """Instance, latency limit and the enumerated best minimum rate (-inf when infeasible)."""
    links, paths = random_instance(200 + seed, n_links=3, n_demands=2)
    # limit: the median latency over all designs of the first demand, so it binds
    lats = sorted(met["D0"][1] for _r, _c, _cost, met in enumerate_designs(links, paths, PAR))
    limit = lats[len(lats) // 2]
    best = -math.inf
    for _reps, _choice, _c, met in enumerate_designs(links, paths, PAR):
        if all(v[1] <= limit for v in met.values()):
            best = max(best, min(v[0] for v in met.values()))
    return links, paths, limit, best


def test_enumeration_cases_are_mostly_feasible():
    """The comparisons below return early on infeasible instances; most must be feasible, or they check little."""
    min_cost = [not math.isinf(_min_cost_case(s)[3]) for s in MIN_COST_SEEDS]
    latency = [not math.isinf(_latency_case(s)[3]) for s in LATENCY_SEEDS]
    assert sum(min_cost) >= len(min_cost) // 2 + 1, min_cost
    assert sum(latency) >= len(latency) // 2 + 1, latency


@pytest.mark.parametrize("seed", MIN_COST_SEEDS)
def test_min_cost_matches_enumeration(seed):
    links, paths, target, best = _min_cost_case(seed)
    demands = demands_table(paths, rate_target=target)
    if math.isinf(best):
        with pytest.raises(RepeaterInfeasible):
            solve(links, demands, PAR)
        return
    res = solve(links, demands, PAR)
    assert res.status is SolveStatus.OPTIMAL
    assert res.objective == pytest.approx(best, abs=1e-6)
    # the returned design, recomputed from scratch, meets every target at that cost
    reps = dict(zip(res.tables["links"]["link"], res.tables["links"]["repeaters"], strict=True))
    choice = dict(zip(res.tables["demands"]["demand"], res.tables["demands"]["path_index"], strict=True))
    met = demand_metrics(links, paths, reps, choice, PAR)
    assert all(met[d][0] >= target[d] * (1 - 1e-7) for d in paths)
    assert sum(reps[lid] * c for lid, c in zip(links["link"], links["cost_per_repeater"], strict=True)) == (
        pytest.approx(best)
    )
    table = res.tables["demands"].set_index("demand")
    for d in paths:
        assert table.at[d, "rate"] == pytest.approx(met[d][0], rel=1e-9)
        assert table.at[d, "latency_s"] == pytest.approx(met[d][1], rel=1e-9)


@pytest.mark.parametrize("seed", range(6))
def test_max_min_rate_matches_enumeration(seed):
    links, paths = random_instance(100 + seed)
    budget = 3.0
    best, best_cost = -math.inf, math.inf
    for _reps, _choice, c, met in enumerate_designs(links, paths, PAR):
        if c <= budget:
            r = min(v[0] for v in met.values())
            if r > best * (1 + 1e-9):
                best, best_cost = r, c
            elif r >= best * (1 - 1e-9):
                best_cost = min(best_cost, c)
    res = solve(links, demands_table(paths), PAR, mode="max_min_rate", budget=budget)
    assert res.status is SolveStatus.OPTIMAL
    assert res.objective == pytest.approx(best, rel=1e-6)
    assert res.tables["demands"]["rate"].min() == pytest.approx(best, rel=1e-6)
    assert res.info["total_cost"] == pytest.approx(best_cost)  # cost tie-break
    assert res.info["total_cost"] <= budget


@pytest.mark.parametrize("seed", LATENCY_SEEDS)
def test_latency_limit_matches_enumeration(seed):
    links, paths, limit, best = _latency_case(seed)
    demands = demands_table(paths)
    if math.isinf(best):
        with pytest.raises(RepeaterInfeasible):
            solve(links, demands, PAR, mode="max_min_rate", latency_limit_s=limit)
        return
    res = solve(links, demands, PAR, mode="max_min_rate", latency_limit_s=limit)
    assert res.objective == pytest.approx(best, rel=1e-6)
    assert (res.tables["demands"]["latency_s"] <= limit * (1 + 1e-6)).all()


def test_min_cost_with_latency_matches_enumeration():
    links, paths = random_instance(7, n_links=3, n_demands=2)
    data = prepare(links, demands_table(paths), PAR)
    target = {d: 0.3 * best_single_rate(data, d) for d in paths}
    designs = list(enumerate_designs(links, paths, PAR))
    ok = [(c, met) for _r, _ch, c, met in designs if all(met[d][0] >= target[d] for d in paths)]
    limit = sorted(max(v[1] for v in met.values()) for _c, met in ok)[len(ok) // 3]
    best = min(c for c, met in ok if all(v[1] <= limit for v in met.values()))
    res = solve(links, demands_table(paths, rate_target=target), PAR, latency_limit_s=limit)
    assert res.objective == pytest.approx(best)
    assert res.tables["demands"]["meets_target"].all()


def test_paper_example_more_repeaters_raise_rate_when_q_is_high():
    """Fig. 7a trend: 200 km, q = 0.9 -> the rate-maximising spacing uses many repeaters."""
    links = pd.DataFrame({"link": ["x"], "length_km": [200.0], "max_repeaters": [40]})
    demands = pd.DataFrame({"demand": ["d"], "paths": [[["x"]]]})
    par = chain(alpha_db_per_km=0.4, q=0.9, memory=1.0)
    res = solve(links, demands, par, mode="max_min_rate")
    n_best = max(range(41), key=lambda n: eq9_ratio(n + 1, 10 ** (-0.4 * 200 / (n + 1) / 10), 0.9, 1.0))
    assert int(res.tables["links"].at[0, "repeaters"]) == n_best
    assert n_best > 5


# ---------------------------------------------------------------------------
# Infeasibility
# ---------------------------------------------------------------------------


def test_unreachable_target_names_the_demand():
    links = pd.DataFrame({"link": ["a", "b"], "length_km": [100.0, 300.0], "max_repeaters": [2, 2]})
    demands = pd.DataFrame({"demand": ["easy", "hard"], "paths": [[["a"]], [["b"]]], "rate_target": [1e-3, 0.5]})
    with pytest.raises(RepeaterInfeasible) as err:
        solve(links, demands, PAR)
    assert err.value.conflicts == ["hard"]
    assert isinstance(err.value, RuntimeError)


def test_joint_conflict_is_minimal():
    # 'short' rides link a alone and is best served by exactly 3 repeaters on a;
    # 'long' rides a + b and needs another count on a (q = 0.5 penalises hops).
    par = chain(alpha_db_per_km=0.2, q=0.5, memory=1.0)
    links = pd.DataFrame(
        {
            "link": ["a", "b"],
            "length_km": [80.0, 20.0],
            "max_repeaters": [3, 3],
            "cost_per_repeater": [1.0, 1.0],
        }
    )
    paths = {"short": [["a"]], "long": [["a", "b"]], "other": [["b"]]}
    designs = list(enumerate_designs(links, paths, par))
    r_short = {reps["a"]: met["short"][0] for reps, _c, _cost, met in designs}
    n_short = max(r_short, key=r_short.get)
    target = {"short": r_short[n_short] * 0.99, "other": 1e-6}
    best_long_fixed = max(met["long"][0] for reps, *_x, met in designs if reps["a"] == n_short)
    target["long"] = best_long_fixed * 1.01
    alone = {d: any(met[d][0] >= target[d] for *_x, met in designs) for d in paths}
    assert all(alone.values())
    joint = any(all(met[d][0] >= target[d] for d in paths) for *_x, met in designs)
    assert not joint
    with pytest.raises(RepeaterInfeasible) as err:
        solve(links, demands_table(paths, rate_target=target), par)
    assert sorted(err.value.conflicts) == ["long", "short"]


# ---------------------------------------------------------------------------
# Bad input
# ---------------------------------------------------------------------------


def test_bad_input_names_rows():
    links = pd.DataFrame({"link": ["a", "b"], "length_km": [-5.0, 10.0], "max_repeaters": [1, 1.5]})
    demands = pd.DataFrame({"demand": ["d"], "paths": [[["a", "zz"]]], "rate_target": [0.1]})
    sane = tables(links.assign(length_km=[5.0, 10.0], max_repeaters=[1, 1]), PAR)
    with pytest.raises(RepeaterInputError) as err:
        repeaters.solve_spacing(links, demands, sane)
    msg = str(err.value)
    assert "row 0" in msg and "length_km" in msg
    assert "row 1" in msg and "max_repeaters" in msg
    assert "'zz'" in msg
    with pytest.raises(RepeaterInputError, match="rate_target"):
        solve(
            links.assign(length_km=[5.0, 5.0], max_repeaters=[1, 1]),
            demands.drop(columns="rate_target").assign(paths=[[["a"]]]),
            PAR,
        )


def test_bad_chain_tables_are_named():
    links = pd.DataFrame({"link": ["a", "b"], "length_km": [50.0, 80.0], "max_repeaters": [2, 1]})
    demands = pd.DataFrame({"demand": ["d"], "paths": [[["a", "b"]]], "rate_target": [1e-3]})
    good = tables(links, PAR)
    rf, lrf, sl = good.hop_arrays()
    with pytest.raises(RepeaterInputError, match="rate_factor"):
        ChainTables(good.options, rf[:3], lrf, sl)
    with pytest.raises(RepeaterInputError, match=r"rate_factor\[k\] must be a finite number > 0"):
        ChainTables(good.options, np.where(np.arange(len(rf)) == 2, 0.0, rf), lrf, sl)
    with pytest.raises(RepeaterInputError, match="options table: missing columns"):
        ChainTables(good.options.drop(columns="time_s"), rf, lrf, sl)
    with pytest.raises(RepeaterInputError, match=r"links \['b'\]"):  # option n = 1 of link b missing
        repeaters.prepare_spacing_data(links, demands, ChainTables(good.options.iloc[:-1], rf, lrf, sl))
    falling = good.options.assign(log_p=good.options["log_p"][::-1].to_numpy())
    with pytest.raises(RepeaterInputError, match="must not fall"):
        repeaters.prepare_spacing_data(links, demands, ChainTables(falling, rf, lrf, sl))
    short = ChainTables(good.options, rf[:4], lrf[:4], sl[:4])  # a chain over a and b has up to 5 hops
    with pytest.raises(RepeaterInputError, match=r"cover k = 1..3 hops but a candidate path can form a chain of 5"):
        repeaters.prepare_spacing_data(links, demands, short)


# ---------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------


def test_candidate_link_paths_against_networkx():
    g = nx.waxman_graph(15, beta=0.6, alpha=0.4, seed=3)
    g = g.subgraph(max(nx.connected_components(g), key=len)).copy()
    rows = [
        {
            "link": f"e{i}",
            "u": a,
            "v": b,
            "length_km": 100 * math.dist(g.nodes[a]["pos"], g.nodes[b]["pos"]),
        }
        for i, (a, b) in enumerate(g.edges)
    ]
    edges = pd.DataFrame(rows)
    nodes = sorted(g.nodes)
    s, t = nodes[0], nodes[-1]
    paths = candidate_link_paths(edges, s, t, k=3)
    lengths = dict(zip(edges["link"], edges["length_km"], strict=True))
    got = [sum(lengths[lid] for lid in p) for p in paths]
    for a, b in g.edges:
        g[a][b]["w"] = 100 * math.dist(g.nodes[a]["pos"], g.nodes[b]["pos"])
    expected = [nx.path_weight(g, p, "w") for p in itertools.islice(nx.shortest_simple_paths(g, s, t, weight="w"), 3)]
    assert got == pytest.approx(expected)
    assert got == sorted(got)


# ---------------------------------------------------------------------------
# Heuristic and presolve
# ---------------------------------------------------------------------------


def test_hop_factor_nonincreasing_agrees_with_physics():
    """Dropping dominated demands relies on g(k) non-increasing; check it independently."""
    for q in (0.05, 0.3, 0.7, 0.9, 0.99, 1.0):
        g = np.asarray(physics.chain_factor(np.arange(1, 600), q=q), dtype=float)
        assert np.all(np.diff(g) <= 1e-12 * g[:-1])
        links = pd.DataFrame({"link": ["a"], "length_km": [10.0], "max_repeaters": [598]})
        data = prepare(
            links, pd.DataFrame({"demand": ["d"], "path": [["a"]]}), chain(alpha_db_per_km=0.2, q=q, memory=1.0)
        )
        assert rate_factor_nonincreasing(data, 599)


def _design_cost(links, reps):
    return sum(reps[lid] * c for lid, c in zip(links["link"], links["cost_per_repeater"], strict=True))


@pytest.mark.parametrize("seed", range(6))
def test_min_cost_heuristic_feasible_and_not_better_than_enumeration(seed):
    links, paths = random_instance(seed)
    data = prepare(links, demands_table(paths), PAR)
    target = {d: 0.6 * best_single_rate(data, d) for d in paths}
    best = min(
        (c for _r, _ch, c, met in enumerate_designs(links, paths, PAR) if all(met[d][0] >= target[d] for d in paths)),
        default=math.inf,
    )
    data = prepare(links, demands_table(paths, rate_target=target), PAR)
    heur = heuristic_spacing(data, mode="min_cost")
    if math.isinf(best):
        assert heur is None
        return
    if heur is None:  # allowed (a heuristic may miss), but not on these small instances
        pytest.fail("heuristic found no design although one exists")
    reps = {lid: heur.repeaters.get(lid, 0) for lid in links["link"]}
    met = demand_metrics(links, paths, reps, heur.path_choice, PAR)
    assert all(met[d][0] >= target[d] * (1 - 1e-7) for d in paths)
    assert heur.objective == pytest.approx(_design_cost(links, reps))
    assert heur.objective >= best - 1e-9


@pytest.mark.parametrize("seed", range(6))
def test_max_min_heuristic_within_budget_and_not_better_than_enumeration(seed):
    links, paths = random_instance(100 + seed)
    budget = 3.0
    best = max(
        min(v[0] for v in met.values()) for _r, _ch, c, met in enumerate_designs(links, paths, PAR) if c <= budget
    )
    data = prepare(links, demands_table(paths), PAR)
    heur = heuristic_spacing(data, mode="max_min_rate", budget=budget)
    assert heur is not None
    reps = {lid: heur.repeaters.get(lid, 0) for lid in links["link"]}
    assert _design_cost(links, reps) <= budget + 1e-9
    met = demand_metrics(links, paths, reps, heur.path_choice, PAR)
    worst = min(v[0] for v in met.values())
    assert math.exp(heur.objective) == pytest.approx(worst, rel=1e-9)
    assert worst <= best * (1 + 1e-9)


def line_instance(seed: int, *, n_links: int = 5, n_demands: int = 7):
    """Links in a line; demands on contiguous runs, so many paths nest (dominance applies)."""
    rng = np.random.default_rng(seed)
    links = pd.DataFrame(
        {
            "link": [f"L{i}" for i in range(n_links)],
            "length_km": rng.uniform(30, 150, n_links).round(1),
            "cost_per_repeater": rng.choice([1.0, 2.0], n_links),
            "max_repeaters": rng.integers(1, 4, n_links),
        }
    )
    paths = {}
    for d in range(n_demands):
        a = int(rng.integers(0, n_links))
        b = int(rng.integers(a, min(n_links, a + 3)))
        paths[f"D{d}"] = [[f"L{i}" for i in range(a, b + 1)]]
    return links, paths


@pytest.mark.parametrize("seed", range(5))
def test_presolve_with_nested_paths_matches_enumeration(seed):
    """Dominated demands and presolved options/hops keep the optimum (min cost, with latency)."""
    links, paths = line_instance(seed)
    data = prepare(links, demands_table(paths), PAR)
    rng = np.random.default_rng(seed)
    target = {d: float(rng.uniform(0.2, 0.7)) * best_single_rate(data, d) for d in paths}
    designs = list(enumerate_designs(links, paths, PAR))
    ok = [(c, met) for _r, _ch, c, met in designs if all(met[d][0] >= target[d] for d in paths)]
    limits = {d: math.nan for d in paths}
    if ok:  # a latency limit on one demand that binds for some designs
        d0 = next(iter(paths))
        lats = sorted(met[d0][1] for _c, met in ok)
        limits[d0] = lats[len(lats) // 2]
    feasible = [c for c, met in ok if all(math.isnan(limits[d]) or met[d][1] <= limits[d] for d in paths)]
    demands = demands_table(paths, rate_target=target, latency_limit_s=limits)
    if not feasible:
        with pytest.raises(RepeaterInfeasible):
            solve(links, demands, PAR)
        return
    res = solve(links, demands, PAR)
    assert res.status is SolveStatus.OPTIMAL
    assert res.objective == pytest.approx(min(feasible))
    assert res.tables["demands"]["meets_target"].all()
    plain = solve(links, demands, PAR, presolve=False, use_heuristic=False)
    assert plain.objective == pytest.approx(min(feasible))


def test_dominated_demands_are_dropped():
    links = pd.DataFrame({"link": ["a", "b", "c"], "length_km": [50.0, 60.0, 70.0], "max_repeaters": [2, 2, 2]})
    paths = {"ab": [["a", "b"]], "a": [["a"]], "abc": [["a", "b", "c"]], "c": [["c"]]}
    target = {"ab": 1e-3, "a": 1e-3, "abc": 1e-3, "c": 2e-3}  # "c" asks for more than "abc"
    data = prepare(links, demands_table(paths, rate_target=target), PAR)
    reduced, dropped = drop_dominated_demands(data, mode="min_cost")
    assert dropped == 2
    assert sorted(reduced.demand_ids) == ["abc", "c"]


@pytest.mark.parametrize("mode", ["min_cost", "max_min_rate"])
def test_time_limit_returns_a_design_with_finite_gap(mode):
    """A medium instance under a 1 s limit still returns a design (heuristic or better)."""
    rng = np.random.default_rng(5)
    g = nx.random_geometric_graph(30, 0.35, seed=5)
    g = g.subgraph(max(nx.connected_components(g), key=len)).copy()
    edges = pd.DataFrame(
        [
            {
                "link": f"e{i}",
                "u": a,
                "v": b,
                "length_km": 500 * math.dist(g.nodes[a]["pos"], g.nodes[b]["pos"]) + 1,
            }
            for i, (a, b) in enumerate(g.edges)
        ]
    )
    links = edges[["link", "length_km"]].assign(max_repeaters=20, cost_per_repeater=1.0)
    nodes = sorted(g.nodes)
    pairs = [tuple(rng.choice(nodes, 2, replace=False)) for _ in range(40)]
    paths = {f"d{i}": [candidate_link_paths(edges, s, t)[0]] for i, (s, t) in enumerate(pairs)}
    par = chain(alpha_db_per_km=0.4, q=0.9, memory=4.0)
    data = prepare(links, demands_table(paths), par)
    target = {d: 0.3 * best_single_rate(data, d) for d in paths}
    opts = SolverOptions(time_limit_s=1.0)
    if mode == "min_cost":
        res = solve(links, demands_table(paths, rate_target=target), par, options=opts)
    else:
        res = solve(links, demands_table(paths), par, mode=mode, budget=len(links), options=opts)
    assert res.has_solution
    assert math.isfinite(res.gap) and res.gap >= 0
    assert res.info["source"] in ("milp", "heuristic")
    if mode == "min_cost":
        assert res.tables["demands"]["meets_target"].all()
        assert res.objective <= res.info["heuristic_objective"] + 1e-9
        assert res.bound <= res.objective + 1e-6
    else:
        assert res.info["total_cost"] <= len(links)
        assert res.objective >= res.info["heuristic_objective"] * (1 - 1e-9)


@pytest.mark.parametrize(
    ("milp_status", "mode"),
    [
        (SolveStatus.TIME_LIMIT_NO_SOLUTION, "min_cost"),
        (SolveStatus.TIME_LIMIT_NO_SOLUTION, "max_min_rate"),
        (SolveStatus.INFEASIBLE, "min_cost"),
    ],
)
def test_heuristic_returned_when_milp_has_no_solution(monkeypatch, milp_status, mode):
    """When the MILP ends without a solution the heuristic design comes back, with a gap."""
    import solvers.repeaters_run as run
    from solvers.base import RawSolve

    links, paths = line_instance(3, n_links=6, n_demands=10)
    data = prepare(links, demands_table(paths), PAR)
    target = {d: 0.5 * best_single_rate(data, d) for d in paths}
    demands = demands_table(paths, rate_target=target)
    exact = solve(links, demands, PAR, mode=mode, budget=4.0)
    bound = exact.info.get("objective_log", exact.objective)

    def no_solution(model, options):
        return RawSolve(milp_status, math.nan, bound, math.nan, 0.01, "highs")

    monkeypatch.setattr(run, "solve_model", no_solution)
    # a weak presolve bound, so the heuristic is not proven optimal and the MILP is called
    monkeypatch.setattr(run, "presolve_bound", lambda *a, **k: 0.0)
    res = solve(links, demands, PAR, mode=mode, budget=4.0)
    assert res.status is SolveStatus.HEURISTIC
    assert res.info["source"] == "heuristic"
    assert res.objective == pytest.approx(res.info["heuristic_objective"])
    if mode == "min_cost":
        assert res.tables["demands"]["meets_target"].all()
        assert res.objective >= exact.objective - 1e-9
    else:
        assert res.info["total_cost"] <= 4.0
        assert res.tables["demands"]["rate"].min() == pytest.approx(res.objective)
        assert res.objective <= exact.objective * (1 + 1e-9)
    if milp_status is SolveStatus.TIME_LIMIT_NO_SOLUTION:
        assert math.isfinite(res.gap)
        assert res.gap == pytest.approx(abs(res.objective - exact.objective) / max(1e-9, abs(res.objective)), abs=1e-9)


@pytest.mark.parametrize("mode", ["min_cost", "max_min_rate"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_model_not_built_when_too_large_returns_heuristic_with_valid_bound(seed, mode):
    """Over the size limit the MILP is not built; the heuristic design comes back with a bound
    that the exact optimum (solved without the limit) respects."""
    links, paths = line_instance(seed, n_links=6, n_demands=9)
    data = prepare(links, demands_table(paths), PAR)
    target = {d: 0.5 * best_single_rate(data, d) for d in paths}
    demands = demands_table(paths, rate_target=target)
    exact = solve(links, demands, PAR, mode=mode, budget=4.0, options=SolverOptions(mip_gap=1e-9))
    assert exact.status is SolveStatus.OPTIMAL
    capped = solve(links, demands, PAR, mode=mode, budget=4.0, max_nonzeros=1)
    assert capped.has_solution
    assert capped.info["milp_skipped"].startswith("model not built")
    if mode == "min_cost":
        assert capped.bound <= exact.objective + 1e-9
        assert capped.objective >= exact.objective - 1e-9
        assert capped.tables["demands"]["meets_target"].all()
    else:
        assert capped.bound >= exact.objective * (1 - 1e-9)
        assert capped.objective <= exact.objective * (1 + 1e-9)
        assert capped.info["total_cost"] <= 4.0 + 1e-9
    assert capped.info["milp_status"] == "not built"
    if capped.status is SolveStatus.OPTIMAL:
        assert capped.objective == pytest.approx(exact.objective)


# ---------------------------------------------------------------------------
# Physically unreachable demands (fast bound, planning the rest)
# ---------------------------------------------------------------------------


def _one_unreachable_case():
    # 'easy' (link a, 100 km) reaches 0.05 with one repeater: 2 * 10^-1 * q = 0.16 (none: 2 * 10^-2).
    # 'hard' (link b, 300 km, at most 2 repeaters) reaches at most max over n of Eq. 9, far below 0.5.
    links = pd.DataFrame(
        {"link": ["a", "b"], "length_km": [100.0, 300.0], "max_repeaters": [2, 2], "cost_per_repeater": [1.0, 1.0]}
    )
    demands = pd.DataFrame({"demand": ["easy", "hard"], "paths": [[["a"]], [["b"]]], "rate_target": [0.05, 0.5]})
    hard_best = max(eq9_ratio(n + 1, 10 ** (-0.2 * 300 / (n + 1) / 10), PAR.q, PAR.memory) for n in range(3))
    return links, demands, hard_best


def test_unreachable_demand_is_planned_around_with_its_shortfall():
    links, demands, hard_best = _one_unreachable_case()
    assert hard_best < 0.5  # the hand calculation: 'hard' is physically unreachable
    res = solve(links, demands, PAR, plan_reachable=True)
    assert res.has_solution and res.objective == pytest.approx(1.0)
    assert set(res.info["unreachable"]) == {"hard"}
    assert res.info["unreachable"]["hard"] == pytest.approx(hard_best, rel=1e-9)  # exact for one link, g nonincreasing
    rd = res.tables["demands"].set_index("demand")
    assert bool(rd.at["easy", "meets_target"]) and rd.at["easy", "shortfall"] == 0.0
    assert not bool(rd.at["hard", "meets_target"])
    # link b is left without repeaters: 'hard' gets the bare 300 km link's Eq. 9 rate, and the shortfall is the rest
    bare = eq9_ratio(1, 10 ** (-0.2 * 300 / 10), PAR.q, PAR.memory)
    assert rd.at["hard", "rate"] == pytest.approx(bare)
    assert rd.at["hard", "shortfall"] == pytest.approx(0.5 - bare)


def test_unreachable_demand_raises_by_default_with_its_bound():
    links, demands, hard_best = _one_unreachable_case()
    with pytest.raises(RepeaterInfeasible) as err:
        solve(links, demands, PAR)
    assert err.value.conflicts == ["hard"]
    assert f"{hard_best:.4g}" in err.value.details[0]


@pytest.mark.parametrize("q", [0.6, 0.8, 1.0])
def test_rate_upper_bounds_never_below_exact_best(q):
    par = chain(alpha_db_per_km=0.2, q=q, memory=2.0)
    exact = 0
    for seed in range(40):
        links, paths = random_instance(seed, n_links=5, n_demands=4, k_paths=3)
        data = prepare(links, demands_table(paths), par, require_targets=False)
        for d, upper in zip(data.demand_ids, rate_upper_bounds(data), strict=True):
            best = best_single_rate(data, d)
            assert upper >= best * (1 - 1e-9)
            exact += upper <= best * (1 + 1e-9)
    assert exact > 0  # the bound is tight on some demands (one-link paths at least)


def test_plan_repeaters_plans_around_an_unreachable_demand_with_a_note():
    from planner.model.scenario import default_scenario
    from planner.stages.backbone import Backbone
    from planner.stages.repeaters import plan_repeaters

    sc = default_scenario()
    ph, bbs = sc.physics, sc.backbone
    links = pd.DataFrame(
        {
            "link_id": ["L1", "L2"],
            "u": ["A", "B"],
            "v": ["B", "C"],
            "length_km": [100.0, 9000.0],
            "route": ["A;B", "B;C"],
        }
    )
    demands = pd.DataFrame(
        {
            "demand_id": ["A~B", "B~C"],
            "source": ["A", "B"],
            "target": ["B", "C"],
            "path": ["A;B", "B;C"],
            "links": ["L1", "L2"],
            "length_km": [100.0, 9000.0],
        }
    )
    # hand calculation: the best Eq. 9 rate over 0..max repeaters on the 9 000 km link is below the target
    best = max(
        eq9_ratio(n + 1, 10 ** (-ph.alpha_db_per_km * 9000.0 / (n + 1) / 10), ph.q_swap, sc.memory.edge_units)
        for n in range(bbs.max_repeaters_per_link + 1)
    )
    assert best < bbs.rate_target
    out = plan_repeaters(Backbone(nodes=["A", "B", "C"], links=links, demands=demands), sc)
    rd = out.tables["demands"].set_index("demand")
    assert bool(rd.at["A~B", "meets_target"]) and rd.at["A~B", "shortfall"] == 0.0
    assert not bool(rd.at["B~C", "meets_target"])
    assert rd.at["B~C", "shortfall"] == pytest.approx(bbs.rate_target - rd.at["B~C", "rate"])
    assert any("B~C" in note and "shortfall" in note for note in out.notes)
    # the typed fields hold the same figures, by link and demand id
    rl = out.tables["links"]
    assert out.link_repeaters.to_dict() == dict(zip(rl["link"], rl["repeaters"], strict=True))
    assert out.demand_rate["B~C"] == rd.at["B~C", "rate"] and out.demand_hops["A~B"] == rd.at["A~B", "hops"]
    assert out.demand_shortfall is not None and out.demand_shortfall["B~C"] == rd.at["B~C", "shortfall"]
    assert set(out.unreachable) == {"B~C"} and out.unreachable["B~C"] == pytest.approx(best, rel=1e-9)
