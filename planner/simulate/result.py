"""The typed result of a design check and its files.

:class:`SimulationResult` is what :func:`planner.simulate.design_check.simulate_design`
returns; :meth:`SimulationResult.to_dict` is the JSON form written as ``simulation.json``
(:func:`write_simulation_files`). For callers that read the JSON form, the result is also a
read-only mapping of it (``result["totals"]`` equals ``result.to_dict()["totals"]``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from planner.errors import InputFormatError
from planner.io.files import write_csv
from planner.model.serialise import DESIGN_DIGITS, json_ready
from planner.simulate.compare import PAIR_COLUMNS
from planner.simulate.demand_work import MIN_SIMULATED_P

__all__ = [
    "REPORT_COLUMNS",
    "SIM_SCHEMA_VERSION",
    "SimulationResult",
    "SimulationSamples",
    "summary_lines",
    "write_simulation_files",
]

#: Version of the layout of ``simulation.json``.
SIM_SCHEMA_VERSION = 1


@dataclass(frozen=True)
class SimulationSamples:
    """How much a run simulated.

    ``requests``: key requests per inter-cluster pair (None in duration mode);
    ``duration_s``: simulated seconds of traffic (None in request mode); ``access_slots``:
    attempts per cluster; ``chain_cycles``: end-to-end pairs per chain (None in duration
    mode: per pair); ``eavesdroppers_per_request``: eavesdropper draws per request;
    ``request_key_bits``: bits one request asks for; ``latency_pairs``: pairs that ran the
    slot-level physical protocol; ``physical_trials``: its trials per pair.
    """

    requests: int | None
    duration_s: float | None
    access_slots: int
    chain_cycles: int | None
    eavesdroppers_per_request: int
    request_key_bits: int
    latency_pairs: int
    physical_trials: int

    def to_dict(self) -> dict[str, Any]:
        """The ``samples`` entry of ``simulation.json`` (fields in declaration order)."""
        return {
            "requests": self.requests,
            "duration_s": self.duration_s,
            "access_slots": self.access_slots,
            "chain_cycles": self.chain_cycles,
            "eavesdroppers_per_request": self.eavesdroppers_per_request,
            "request_key_bits": self.request_key_bits,
            "latency_pairs": self.latency_pairs,
            "physical_trials": self.physical_trials,
        }


@dataclass(frozen=True, eq=False)
class SimulationResult(Mapping[str, Any]):
    """Predicted vs simulated, pair by pair, for one design (see :mod:`planner.simulate.design_check`).

    ``pairs``: one row per cluster and per demand (keys :data:`PAIR_COLUMNS`); ``clusters``:
    the intra-cluster rows; ``links``: key-pool use per fibre link; ``totals``: counts and
    sums over them; ``worst``: the pairs with the largest gaps; ``tolerance`` and ``level``:
    the flagging rule; ``seed``: root of every draw; ``notes``: what the run did and did not
    check. Built with :meth:`create`, every value is plain JSON data (floats rounded to
    :data:`~planner.model.serialise.DESIGN_DIGITS` significant digits, non-finite as None).
    Two results are equal when their JSON forms are.
    """

    network: str
    scenario: str
    seed: int
    level: float
    tolerance: dict[str, float]
    samples: SimulationSamples
    pairs: list[dict[str, Any]]
    clusters: list[dict[str, Any]]
    links: list[dict[str, Any]]
    totals: dict[str, Any]
    worst: dict[str, list[dict[str, Any]]]
    notes: list[str]
    schema_version: int = SIM_SCHEMA_VERSION
    _json: dict[str, Any] = field(init=False, repr=False, compare=False)

    @classmethod
    def create(cls, **values: Any) -> SimulationResult:
        """A result from raw values (numpy scalars, NaN, ...): each made JSON-ready first."""
        samples = values.pop("samples")
        ready = {k: json_ready(v, digits=DESIGN_DIGITS) for k, v in values.items()}
        return cls(samples=SimulationSamples(**json_ready(samples.to_dict(), digits=DESIGN_DIGITS)), **ready)

    def __post_init__(self) -> None:
        form = {
            "schema_version": self.schema_version,
            "network": self.network,
            "scenario": self.scenario,
            "seed": self.seed,
            "level": self.level,
            "tolerance": self.tolerance,
            "samples": self.samples.to_dict(),
            "pairs": self.pairs,
            "clusters": self.clusters,
            "links": self.links,
            "totals": self.totals,
            "worst": self.worst,
            "notes": self.notes,
        }
        object.__setattr__(self, "_json", form)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (the content of ``simulation.json``): a new top-level dict."""
        return dict(self._json)

    def __getitem__(self, key: str) -> Any:
        return self._json[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._json)

    def __len__(self) -> int:
        return len(self._json)


REPORT_COLUMNS = [
    "pair",
    "kind",
    "rate_predicted",
    "rate_simulated",
    "rate_ci_low",
    "rate_ci_high",
    "rate_rel_error",
    "security_predicted",
    "security_simulated",
    "security_abs_error",
    "latency_predicted_s",
    "latency_first_pair_s",
    "eps_met",
    "requests_served",
    "key_pool_depletion",
    "flagged",
    "flag_reason",
]


def summary_lines(sim: Mapping[str, Any]) -> list[str]:
    """Plain-text sentences summarising a simulation (for reports and the CLI).

    Covers, where simulated: the rate and security agreement with their tolerances,
    eps, key-pool use, Eq. 10 vs the simulated first-pair time, the rate under full
    concurrent load, and the run's notes.
    """
    t, tol = sim.get("totals", {}), sim.get("tolerance", {})
    pairs = pd.DataFrame(sim.get("pairs", []), columns=PAIR_COLUMNS)
    out = [
        f"{t.get('n_flagged', 0)} of {t.get('n_pairs', len(pairs))} pairs flagged (prediction outside the "
        f"simulated 99% CI and more than {100 * tol.get('rate_rel', 0):g}% off in rate or "
        f"{tol.get('security_abs', 0):g} off in security, or inconsistent design tables)."
    ]
    if t.get("max_abs_rate_rel_error") is not None:
        out.append(
            f"Largest rate gap: {100 * t['max_abs_rate_rel_error']:.2f}% over "
            f"{t.get('n_intra_cluster', 0)} clusters and {t.get('n_inter_cluster', 0)} demands."
        )
    if t.get("max_abs_security_error") is not None:
        how = "" if t.get("security_verified", True) else " (fibre graph incomplete: not flagged)"
        out.append(
            f"Largest security gap: {t['max_abs_security_error']:.3f}{how}; lowest simulated security "
            f"{t.get('security_simulated_min', 0):.3g}."
        )
    if t.get("requests"):
        out.append(
            f"eps met by {t.get('n_eps_met', 0)} of {t.get('n_inter_cluster', 0)} demands; key requests "
            f"served {t.get('requests_served', 0)} of {t['requests']} ({t.get('requests_refused_eps', 0)} "
            f"refused: eps not met, {t.get('requests_blocked_pool', 0)} blocked: link key pool empty); "
            f"{t.get('fibre_links_depleted_90pct', 0)} of {t.get('fibre_links_used', 0)} fibre links used "
            "at least 90% of their pool."
        )
    lat = pairs.dropna(subset=["latency_first_pair_s", "latency_predicted_s"])
    if len(lat):
        ratio = lat["latency_predicted_s"].astype(float) / lat["latency_first_pair_s"].astype(float)
        out.append(
            f"Eq. 10 latency is {ratio.min():.3g} to {ratio.max():.3g} times the simulated time to the "
            f"first end-to-end pair ({len(lat)} pairs, slot-level protocol)."
        )
    if t.get("inter_rate_shared_sum") and t.get("inter_rate_predicted_sum"):
        out.append(
            f"With all demands active at once (each link's memory time-shared), the sum of demand rates is "
            f"{100 * t['inter_rate_shared_sum'] / t['inter_rate_predicted_sum']:.1f}% of the predicted sum."
        )
    if t.get("n_rate_not_simulated"):
        out.append(
            f"{t['n_rate_not_simulated']} demand rate(s) not simulated: a segment's success probability "
            f"is below {MIN_SIMULATED_P:g}, so the chain delivers practically nothing."
        )
    out.extend(str(n) for n in sim.get("notes", []))
    return out


def write_simulation_files(sim: Mapping[str, Any], folder: Path) -> list[Path]:
    """Write ``simulation.json`` (sorted keys) and ``simulation_pairs.csv``,
    ``simulation_clusters.csv``, ``simulation_links.csv`` into ``folder``; returns the paths.

    ``sim`` is a :class:`SimulationResult` or its JSON form (a dict read from ``simulation.json``).
    Guarantees: byte-identical files for identical ``sim``.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise InputFormatError(f"{folder}: not a folder; pass an existing output folder", source=str(folder))
    data = json_ready(sim.to_dict() if isinstance(sim, SimulationResult) else sim, digits=DESIGN_DIGITS)
    written = []
    p = folder / "simulation.json"
    p.write_text(json.dumps(data, indent=2, sort_keys=True, allow_nan=False) + "\n", encoding="utf-8")
    written.append(p)
    tables: Sequence[tuple[str, list[dict[str, Any]], list[str] | None]] = (
        ("simulation_pairs.csv", data.get("pairs", []), PAIR_COLUMNS),
        ("simulation_clusters.csv", data.get("clusters", []), None),
        (
            "simulation_links.csv",
            data.get("links", []),
            ["u", "v", "pool_bits", "consumed_bits", "depletion", "pairs_using"],
        ),
    )
    for name, records, columns in tables:
        p = folder / name
        write_csv(pd.DataFrame.from_records(records, columns=columns), p, index=False)
        written.append(p)
    return written
