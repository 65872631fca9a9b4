"""Closed plan-verify loop (``qkdplan plan --verify``): plan, simulate, adjust, re-plan.

Each round plans with :func:`planner.pipeline.plan` and verifies the design with the
simulation entry point (:func:`planner.simulate.design_check.simulate_design`); both are
called through their public signatures, so improvements to either stage apply here
unchanged. A round's design is judged by three targets (:class:`VerifyTargets`):

* **eps**: at least ``eps_share`` of the inter-cluster demands get a global key of
  security ``security.eps`` (simulated flexible reconstruction);
* **served**: at least ``served_share`` of the simulated key requests are served;
* **rate** (repeater backbones with ``backbone.rate_target``): every demand's rate
  with all demands active at once (the simulation's ``rate_shared``) meets the target.

Adjustments, all design choices within stated budgets (:class:`VerifyBudgets`); the
security settings (``p_untrusted``, ``eps``) are never touched:

* eps missed: more trusted relays. The next budget grows with the share of demands
  that missed eps (at least +1, at most x2 per round) up to ``max_trusted``.
* requests blocked by empty key pools: the link key pools are sized to the key bits
  the demand set needs per round of requests (the design's ``fibre.key_bits_per_round``,
  :mod:`planner.keys.pools`) times the requests per demand, up to
  ``max_key_pool_bits``. This needs no re-plan and is applied within the round,
  before the simulation, so a round's figures are those of the design as sized.
* rate missed under full load: the per-link memory cap (``memory.max_units_per_node``)
  is doubled, up to ``max_memory_units``, and edge memory is sized for full load
  (``memory.size_for_load``).

The loop stops when all targets are met, when no adjustment is left (every budget
reached: the verdict names each missed target and why), or after ``rounds`` rounds.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import pandas as pd

from planner import pipeline
from planner.errors import ValidationError
from planner.model.design import Design
from planner.model.network import Network
from planner.model.scenario import Scenario
from planner.simulate import design_check
from planner.stages.trust import NON_RELAY_KINDS

logger = logging.getLogger(__name__)

Progress = Callable[[str], None]
PlanFn = Callable[..., Design]
SimulateFn = Callable[..., Mapping[str, Any]]


@dataclass(frozen=True)
class VerifyTargets:
    """What a verified design must reach (shares are fractions in [0, 1])."""

    eps_share: float = 0.95
    served_share: float = 0.90
    rate: bool = True


@dataclass(frozen=True)
class VerifyBudgets:
    """Upper limits of the adjustments. ``max_trusted`` None = every relay-capable site."""

    max_trusted: int | None = None
    max_key_pool_bits: int = 100_000_000
    max_memory_units: int = 1024


@dataclass
class VerifyRound:
    """Figures of one round (one plan and one simulation)."""

    round: int
    change: str
    trusted_budget: int
    n_trusted: int
    key_pool_bits: int
    n_demands: int
    demands_meeting_eps: int
    requests: int
    requests_served: int
    min_rate: float | None
    min_rate_full_load: float | None
    demands_short_full_load: int
    met: bool

    def row(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class VerifyOutcome:
    """The final design, its simulation, every round and the verdict sentences."""

    design: Design
    simulation: Mapping[str, Any]
    rounds: list[VerifyRound] = field(default_factory=list)
    met: bool = False
    verdict: list[str] = field(default_factory=list)

    def rounds_table(self) -> pd.DataFrame:
        return pd.DataFrame([r.row() for r in self.rounds])


# ---------------------------------------------------------------- evaluation
def _full_load_rates(sim: Mapping[str, Any]) -> pd.Series:
    pairs = pd.DataFrame(sim.get("pairs", []))
    if len(pairs) == 0 or "rate_shared" not in pairs:
        return pd.Series(dtype=float)
    inter = pairs[pairs["kind"] == "inter-cluster"]
    return (
        pd.to_numeric(inter["rate_shared"], errors="coerce")
        .dropna()
        .set_axis(inter.loc[pd.to_numeric(inter["rate_shared"], errors="coerce").notna(), "pair"].astype(str))
    )


def evaluate(design: Design, sim: Mapping[str, Any], scenario: Scenario, targets: VerifyTargets) -> dict[str, Any]:
    """Which targets a simulated design meets: shares, counts and booleans ``eps_ok``, ``served_ok``, ``rate_ok``."""
    t = sim.get("totals", {})
    n = int(t.get("n_inter_cluster", 0))
    n_eps = int(t.get("n_eps_met", 0))
    req, served = int(t.get("requests", 0)), int(t.get("requests_served", 0))
    has_security = "security" in design.demands.columns and len(design.relays) > 0
    shared = _full_load_rates(sim)
    target = scenario.backbone.rate_target
    rate_applies = targets.rate and target > 0 and len(shared) > 0 and scenario.backbone.objective == "min_cost"
    short = int((shared < target * (1 - 1e-9)).sum()) if rate_applies else 0
    inter_min = t.get("inter_rate_simulated_min")
    return {
        "n_demands": n,
        "n_eps": n_eps,
        "requests": req,
        "served": served,
        "blocked_pool": int(t.get("requests_blocked_pool", 0)),
        "eps_ok": (not has_security) or n == 0 or n_eps >= targets.eps_share * n - 1e-9,
        "served_ok": (not has_security) or req == 0 or served >= targets.served_share * req - 1e-9,
        "rate_ok": short == 0,
        "short": short,
        "min_rate": float(inter_min) if inter_min is not None else None,
        "min_rate_full_load": float(shared.min()) if len(shared) else None,
    }


# ---------------------------------------------------------------- key pools
def required_pool_bits(design: Design, requests: int) -> int | None:
    """Pool bits every link needs so that ``requests`` rounds of requests are all served (None: no key layer)."""
    f = design.fibre
    if "key_bits_per_round" not in f.columns or len(f) == 0:
        return None
    return int(f["key_bits_per_round"].astype(int).max()) * int(requests)


def with_key_pool(design: Design, pool_bits: int) -> Design:
    """The design with every link's key pool set to ``pool_bits`` (scenario and fibre table updated)."""
    scenario = {**design.scenario, "security": {**design.scenario["security"], "key_pool_bits": int(pool_bits)}}
    fibre = design.fibre.copy()
    if "key_bits_per_round" in fibre.columns:
        per = fibre["key_bits_per_round"].astype(int)
        fibre["key_pool_bits"] = int(pool_bits)
        fibre["rounds_supported"] = pd.Series(
            [int(pool_bits) // int(b) if b > 0 else None for b in per], dtype=object, index=fibre.index
        )
    metrics = dict(design.metrics)
    if "key_pool_rounds_supported_min" in metrics and metrics.get("key_bits_per_round_max"):
        metrics["key_pool_rounds_supported_min"] = int(pool_bits) // int(metrics["key_bits_per_round_max"])
    return replace(design, scenario=scenario, fibre=fibre, metrics=metrics)


# ---------------------------------------------------------------- adjustments
def _relay_sites(network: Network) -> int:
    return int((~network.sites["kind"].astype(str).isin(NON_RELAY_KINDS)).sum())


def next_trusted_budget(budget: int, n_demands: int, n_eps: int, cap: int) -> int:
    """Budget of the next round: grows with the share of demands missing eps (+1 at least, x2 at most), capped."""
    miss = 1.0 - n_eps / n_demands if n_demands else 0.0
    grown = budget + max(1, math.ceil(max(budget, 1) * min(1.0, 2.0 * miss)))
    return min(cap, grown)


def _adjust(
    scenario: Scenario, ev: dict[str, Any], budgets: VerifyBudgets, network: Network, targets: VerifyTargets
) -> tuple[Scenario | None, list[str], list[str]]:
    """The next round's scenario, the changes made, and the targets no budget can fix any more."""
    overrides: dict[str, Any] = {}
    changes: list[str] = []
    stuck: list[str] = []
    sec, mem = scenario.security, scenario.memory
    cap_trusted = budgets.max_trusted if budgets.max_trusted is not None else _relay_sites(network)
    if not ev["eps_ok"]:
        if sec.trusted_budget < cap_trusted:
            nb = next_trusted_budget(sec.trusted_budget, ev["n_demands"], ev["n_eps"], cap_trusted)
            overrides["security.trusted_budget"] = nb
            changes.append(f"trusted relays budget {sec.trusted_budget} -> {nb}")
        else:
            stuck.append(
                f"eps: {ev['n_eps']} of {ev['n_demands']} demands meet eps = {sec.eps} with the trusted-relay "
                f"budget at its limit ({cap_trusted}); raise the limit (--verify-max-trusted)"
            )
    if not ev["rate_ok"]:
        if mem.max_units_per_node < budgets.max_memory_units:
            nm = min(budgets.max_memory_units, 2 * mem.max_units_per_node)
            overrides["memory.max_units_per_node"] = nm
            overrides["memory.size_for_load"] = True
            changes.append(f"memory per link cap {mem.max_units_per_node} -> {nm} (sized for full load)")
        else:
            stuck.append(
                f"rate: {ev['short']} demand(s) miss the rate target {scenario.backbone.rate_target:g} under "
                f"full load with {budgets.max_memory_units} memory units per link (the memory budget)"
            )
    if not overrides:
        return None, changes, stuck
    return scenario.with_overrides(overrides, source="verify loop"), changes, stuck


def _size_key_pools(
    design: Design, scenario: Scenario, need: int | None, budgets: VerifyBudgets
) -> tuple[Design, Scenario, list[str]]:
    """Link key pools raised to ``need`` bits (within ``budgets.max_key_pool_bits``) when they hold less:
    the design and scenario as sized, and a note on what changed (none when nothing did)."""
    pool = int(scenario.security.key_pool_bits)
    if need is None or need <= pool:
        return design, scenario, []
    new_pool = min(need, budgets.max_key_pool_bits)
    if new_pool <= pool:
        return design, scenario, []
    design = with_key_pool(design, new_pool)
    scenario = scenario.with_overrides({"security.key_pool_bits": new_pool}, source="verify loop")
    note = f"key pools {pool} -> {new_pool} bits per link" + ("" if new_pool == need else f" (budget; {need} needed)")
    routed, total = design.metrics.get("fibre_key_demands_routed"), design.metrics.get("fibre_key_demands")
    if routed is not None and total is not None and routed < total:
        note += f" (needs summed over {routed} of {total} demands: a lower bound)"
    return design, scenario, [note]


def _pool_out_of_reach(ev: Mapping[str, Any], need: int | None, budgets: VerifyBudgets) -> list[str]:
    """Why the served target is out of reach through key pools, when the pool budget is below the need."""
    if ev["served_ok"] or ev["blocked_pool"] <= 0 or need is None or need <= budgets.max_key_pool_bits:
        return []
    return [
        f"served: {ev['blocked_pool']} requests blocked by empty key pools; serving all needs "
        f"{need} bits per link, above the key-pool budget {budgets.max_key_pool_bits} "
        "(--verify-max-key-pool-bits)"
    ]


def _round_record(
    r: int, notes: list[str], scenario: Scenario, design: Design, ev: Mapping[str, Any], met: bool
) -> VerifyRound:
    """The history entry of round ``r``."""
    return VerifyRound(
        round=r,
        change="; ".join(notes),
        trusted_budget=int(scenario.security.trusted_budget),
        n_trusted=int(design.metrics.get("n_trusted", 0) or 0),
        key_pool_bits=int(scenario.security.key_pool_bits),
        n_demands=ev["n_demands"],
        demands_meeting_eps=ev["n_eps"],
        requests=ev["requests"],
        requests_served=ev["served"],
        min_rate=ev["min_rate"],
        min_rate_full_load=ev["min_rate_full_load"],
        demands_short_full_load=ev["short"],
        met=met,
    )


# ---------------------------------------------------------------- the loop
def verify_loop(
    network: Network,
    scenario: Scenario,
    *,
    rounds: int = 4,
    seed: int = 0,
    requests: int = 200,
    targets: VerifyTargets | None = None,
    budgets: VerifyBudgets | None = None,
    plan_fn: PlanFn | None = None,
    simulate_fn: SimulateFn | None = None,
    progress: Progress | None = None,
) -> VerifyOutcome:
    """Plan, simulate and adjust for at most ``rounds`` rounds; see the module docstring.

    Guarantees: the returned design is the last round's (the one ``simulation``
    belongs to); ``rounds`` of the outcome has one entry per round run; ``met`` is true
    iff that design meets every target; otherwise ``verdict`` names each missed target
    and why it is out of reach (a budget reached, or the round limit). The design's
    ``metrics["verify_rounds"]`` and ``metrics["verify_verdict"]`` carry the same
    for the report.
    """
    if rounds < 1:
        raise ValidationError(f"--verify-rounds {rounds}: use 1 or more rounds", source="verify")
    targets = targets or VerifyTargets()
    budgets = budgets or VerifyBudgets()
    say = progress or (lambda msg: None)
    # looked up at call time (not bound at import), so a replaced pipeline.plan is the one run
    plan_fn = plan_fn or pipeline.plan
    simulate_fn = simulate_fn or design_check.simulate_design
    history: list[VerifyRound] = []
    change = "initial plan"
    current = scenario
    design: Design | None = None
    sim: Mapping[str, Any] = {}
    stuck: list[str] = []
    met = False
    for r in range(1, rounds + 1):
        say(f"verify round {r}/{rounds}: planning ({change})")
        design = plan_fn(network, current, seed=seed, progress=progress)
        need = required_pool_bits(design, requests)
        design, current, sized = _size_key_pools(design, current, need, budgets)
        notes = [change, *sized]
        say(f"verify round {r}/{rounds}: simulating")
        sim = simulate_fn(design, requests=requests, seed=seed, network=network)
        ev = evaluate(design, sim, current, targets)
        met = ev["eps_ok"] and ev["served_ok"] and ev["rate_ok"]
        history.append(_round_record(r, notes, current, design, ev, met))
        say(
            f"verify round {r}/{rounds}: eps met by {ev['n_eps']} of {ev['n_demands']} demands, "
            f"{ev['served']} of {ev['requests']} requests served, {ev['short']} demand(s) short under full load"
        )
        if met:
            break
        nxt, changes, stuck = _adjust(current, ev, budgets, network, targets)
        stuck = [*_pool_out_of_reach(ev, need, budgets), *stuck]
        if nxt is None:
            break
        current, change = nxt, "; ".join(changes)
    assert design is not None
    verdict = _verdict(history, met, stuck, rounds, targets, current)
    design.metrics["verify_rounds"] = [h.row() for h in history]
    design.metrics["verify_verdict"] = verdict
    return VerifyOutcome(design=design, simulation=sim, rounds=history, met=met, verdict=verdict)


def _verdict(
    history: list[VerifyRound], met: bool, stuck: list[str], rounds: int, targets: VerifyTargets, scenario: Scenario
) -> list[str]:
    last = history[-1]
    head = (
        f"Verification loop: {len(history)} round(s); final design: {last.demands_meeting_eps} of "
        f"{last.n_demands} demands meet eps = {scenario.security.eps}, {last.requests_served} of {last.requests} "
        f"key requests served (targets {100 * targets.eps_share:g}% and {100 * targets.served_share:g}%)"
    )
    if met:
        return [head + "; every target is met."]
    out = [head + "; targets NOT met."]
    out += [f"Out of reach: {s}." for s in stuck]
    if not stuck:
        out.append(f"Round limit ({rounds}) reached before the targets were met; run with more --verify-rounds.")
    return out
