"""Reproduce the evaluation of the SMR paper (Wang, Li, Xue et al., IEEE Commun. Mag. 2023).

Setting (paper Sec. IV-A): Waxman(-Salama) random topologies of 100 nodes,
``runs`` independent runs per point, a random request (source, target) and
random trusted relays in each run, per-link key pools of 100 kb, the same
security probability ``p_u`` for every untrusted relay.

- Sweep A (Fig. 5): ``p_u`` = 0.50, 0.55, ..., 0.95 with 10 trusted relays.
- Sweep B (Fig. 6): 0, 5, ..., 30 trusted relays with ``p_u = 0.8``.
- Security levels ``eps`` in {0.5, 0.7, 0.9} for flexible key reconstruction.
- Methods: SMR, MSP in two constructions ("MSP": as many stochastic paths as
  SMR uses for the same request and point, node-disjoint where possible, so
  both spend the same number of paths; "MSP-disjoint": strictly node-disjoint
  stochastic paths drawn until no path is left), single shortest path, maximum
  node-disjoint multipath.

Run ``i`` uses the ``i``-th child of ``numpy.random.SeedSequence(seed)`` for
its graph, request, trusted-relay order and MSP randomness, at every point of
both sweeps (common random numbers: the trusted set with ``n`` relays is the
first ``n`` of one random order), so results are identical for any number of
workers.

Metrics per (method, point, eps), averaged over runs:

- ``security_mean`` / ``security_ci``: end-to-end security probability when
  all path keys of each segment are combined (exact, paper Fig. 5a/6a), mean
  and 95 % normal half-width; it does not depend on eps.
- ``key_length_mean``: global key bits delivered after flexible reconstruction
  at eps: ``m * block_bits`` with ``m`` global keys and ``block_bits`` the path
  key length the 100 kb link pools allow (0 when eps cannot be met).
- ``key_consumption_mean``: link key bits the multipath distribution consumes
  per bit of end-to-end key when all path keys are combined (= total hops over
  all paths of the request); like security it belongs to the routing (paper
  Fig. 5a/6a plots both together) and does not depend on eps.
- ``link_bits_per_key_bit``: the second consumption metric: link key bits the
  request's path keys consume (total hops x block bits) per global key bit
  delivered at eps after flexible reconstruction, as a ratio of sums over runs
  (runs that deliver nothing still consume); depends on eps.
- ``paths_mean``: paths per request.
"""

from __future__ import annotations

import csv
import logging
import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from planner.errors import ValidationError
from planner.keys.reconstruction import flexible_key_counts
from planner.routing import RelaySecurity, RequestRouter, SmrResult, multipath_security
from planner.runtime.parallel import default_workers, map_tasks
from planner.simulate.keysim import DEFAULT_POOL_BITS, max_block_bits
from planner.topology.waxman import DEFAULT_ALPHA, DEFAULT_BETA, waxman_graph

logger = logging.getLogger(__name__)

METHODS = ("SMR", "MSP", "MSP-disjoint", "shortest", "disjoint")
EPS_VALUES = (0.5, 0.7, 0.9)
P_UNTRUSTED_SWEEP = tuple(round(0.5 + 0.05 * i, 2) for i in range(10))
N_TRUSTED_SWEEP = (0, 5, 10, 15, 20, 25, 30)
SWEEP_A_TRUSTED = 10
SWEEP_B_P_UNTRUSTED = 0.8
N_NODES = 100
QUICK_RUNS = 40

CSV_COLUMNS = (
    "method",
    "p_untrusted",
    "n_trusted",
    "eps",
    "runs",
    "security_mean",
    "security_ci",
    "key_consumption_mean",
    "key_length_mean",
    "link_bits_per_key_bit",
    "paths_mean",
)


@dataclass(frozen=True)
class SmrExperiment:
    """Parameters of one reproduction (written to the output README)."""

    runs: int
    seed: int
    n_nodes: int = N_NODES
    waxman_alpha: float = DEFAULT_ALPHA
    waxman_beta: float = DEFAULT_BETA
    pool_bits: int = DEFAULT_POOL_BITS
    msp_paths: int | None = None  # None: as many paths as SMR found
    eps_values: tuple[float, ...] = EPS_VALUES
    p_untrusted_sweep: tuple[float, ...] = P_UNTRUSTED_SWEEP
    sweep_a_trusted: int = SWEEP_A_TRUSTED
    n_trusted_sweep: tuple[int, ...] = N_TRUSTED_SWEEP
    sweep_b_p_untrusted: float = SWEEP_B_P_UNTRUSTED

    def points(self) -> list[tuple[str, float, int]]:
        """(sweep, p_untrusted, n_trusted) for every point of both sweeps."""
        pts = [("untrusted", p, self.sweep_a_trusted) for p in self.p_untrusted_sweep]
        pts += [("trusted", self.sweep_b_p_untrusted, n) for n in self.n_trusted_sweep]
        return pts


@dataclass(frozen=True)
class RunMetrics:
    """Per-run arrays: security[point, method], key_bits/consumption/link_bits[point,
    method, eps] and paths[point, method]."""

    security: np.ndarray
    key_bits: np.ndarray
    consumption: np.ndarray
    mean_degree: float
    link_bits: np.ndarray
    paths: np.ndarray


def _group_security_for(route: SmrResult, relay: RelaySecurity):
    """Exact group security when paths of a segment share untrusted relays, else None."""
    for seg in route.segments:
        seen: set[Any] = set()
        for path in seg.paths:
            rels = {v for v in path[1:-1] if relay.is_untrusted(v)}
            if seen & rels:
                break
            seen |= rels
        else:
            continue

        def group(j: int, members: frozenset[int]) -> float:
            paths = [route.segments[j].paths[i] for i in sorted(members)]
            return multipath_security([paths], relay)

        return group
    return None


def _evaluate(
    route: SmrResult, relay: RelaySecurity, exp: SmrExperiment
) -> tuple[float, list[float], list[float], float]:
    """(security, key bits per eps, consumption per eps, link key bits consumed) of one
    routed request."""
    segs = [list(seg.path_security) for seg in route.segments]
    counts = flexible_key_counts(segs, exp.eps_values, group_security=_group_security_for(route, relay))
    block = max_block_bits(route, pool_bits=exp.pool_bits)
    hops = route.total_hops
    key_bits = [float(m * block) for m in counts]
    consumption = [float(hops) for _ in counts]
    return route.security, key_bits, consumption, float(hops * block)


def run_one(exp: SmrExperiment, seed_seq: np.random.SeedSequence) -> RunMetrics:
    """All points of both sweeps for one run (one graph, one request, one trusted order)."""
    rng = np.random.default_rng(seed_seq)
    graph = waxman_graph(exp.n_nodes, rng, alpha=exp.waxman_alpha, beta=exp.waxman_beta)
    source, target = (int(x) for x in rng.choice(exp.n_nodes, size=2, replace=False))
    others = [v for v in range(exp.n_nodes) if v not in (source, target)]
    order = [others[i] for i in rng.permutation(len(others))]
    msp_seed = int(rng.integers(2**63))
    router = RequestRouter(graph, source, target)
    base = {
        "shortest": router.shortest(security=0.5),
        "disjoint": router.disjoint(security=0.5),
    }
    points = exp.points()
    n_pts, n_m, n_e = len(points), len(METHODS), len(exp.eps_values)
    security = np.zeros((n_pts, n_m))
    key_bits = np.zeros((n_pts, n_m, n_e))
    consumption = np.full((n_pts, n_m, n_e), math.nan)
    link_bits = np.zeros((n_pts, n_m, n_e))
    n_paths = np.zeros((n_pts, n_m))
    smr_routes = [router.smr(trusted=frozenset(order[:n_trusted]), security=p_u) for _, p_u, n_trusted in points]
    # MSP draws its paths one after another from one stream, so the route with
    # k paths is the first k paths of the longest one: route once, truncate.
    msp_counts = [exp.msp_paths or max(1, r.n_paths) for r in smr_routes]
    base["MSP"] = router.msp(security=0.5, n_paths=max(msp_counts), rng=np.random.default_rng(msp_seed))
    base["MSP-disjoint"] = router.msp_disjoint(security=0.5, rng=np.random.default_rng([msp_seed, 1]))
    for k, (_, p_u, n_trusted) in enumerate(points):
        trusted = frozenset(order[:n_trusted])
        relay = RelaySecurity(p_u, trusted)
        for mi, method in enumerate(METHODS):
            if method == "SMR":
                route = smr_routes[k]
            elif method == "MSP":
                route = router.reevaluate(base["MSP"], security=p_u, trusted=trusted, max_paths=msp_counts[k])
            else:
                route = router.reevaluate(base[method], security=p_u, trusted=trusted)
            sec, bits, cons, used = _evaluate(route, relay, exp)
            security[k, mi] = sec
            key_bits[k, mi] = bits
            consumption[k, mi] = cons
            link_bits[k, mi] = used
            n_paths[k, mi] = route.n_paths
    degree = 2.0 * graph.number_of_edges() / graph.number_of_nodes()
    return RunMetrics(security, key_bits, consumption, degree, link_bits, n_paths)


def _run_chunk(task: tuple[SmrExperiment, list[np.random.SeedSequence]]) -> list[RunMetrics]:
    exp, seeds = task
    return [run_one(exp, s) for s in seeds]


def _mean_ci(values: np.ndarray) -> tuple[float, float]:
    n = values.shape[0]
    mean = float(values.mean())
    ci = float(1.96 * values.std(ddof=1) / math.sqrt(n)) if n > 1 else math.nan
    return mean, ci


def _nan_mean(values: np.ndarray) -> float:
    ok = values[~np.isnan(values)]
    return float(ok.mean()) if ok.size else math.nan


def _ratio(num: float, den: float) -> float:
    """num / den, or NaN when nothing was delivered (den = 0)."""
    return num / den if den > 0 else math.nan


def aggregate(exp: SmrExperiment, runs: Sequence[RunMetrics]) -> dict[str, list[dict[str, Any]]]:
    """Rows of the two CSV tables, keyed by sweep name."""
    security = np.stack([r.security for r in runs])  # run, point, method
    key_bits = np.stack([r.key_bits for r in runs])
    consumption = np.stack([r.consumption for r in runs])
    link_bits = np.stack([r.link_bits for r in runs])
    paths = np.stack([r.paths for r in runs])
    tables: dict[str, list[dict[str, Any]]] = {"untrusted": [], "trusted": []}
    for k, (sweep, p_u, n_trusted) in enumerate(exp.points()):
        for mi, method in enumerate(METHODS):
            sec_mean, sec_ci = _mean_ci(security[:, k, mi])
            for ei, eps in enumerate(exp.eps_values):
                tables[sweep].append(
                    {
                        "method": method,
                        "p_untrusted": p_u,
                        "n_trusted": n_trusted,
                        "eps": eps,
                        "runs": len(runs),
                        "security_mean": sec_mean,
                        "security_ci": sec_ci,
                        "key_consumption_mean": _nan_mean(consumption[:, k, mi, ei]),
                        "key_length_mean": float(key_bits[:, k, mi, ei].mean()),
                        "link_bits_per_key_bit": _ratio(
                            float(link_bits[:, k, mi, ei].sum()),
                            float(key_bits[:, k, mi, ei].sum()),
                        ),
                        "paths_mean": float(paths[:, k, mi].mean()),
                    }
                )
    return tables


def _write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    with tmp.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(CSV_COLUMNS), lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow(
                {
                    key: (
                        ""
                        if isinstance(val, float) and math.isnan(val)
                        else (f"{val:.6g}" if isinstance(val, float) else val)
                    )
                    for key, val in row.items()
                }
            )
    tmp.replace(path)


def reproduce_smr(
    out_dir: Path,
    *,
    runs: int = 1000,
    seed: int = 0,
    quick: bool = False,
    workers: int | None = None,
    waxman_alpha: float = DEFAULT_ALPHA,
    waxman_beta: float = DEFAULT_BETA,
) -> list[Path]:
    """Run both sweeps of the SMR paper's evaluation and write tables, figures and a README.

    ``quick`` caps runs at 40 (same points). Runs are spread over ``workers``
    processes (default: available cores) with :func:`planner.runtime.parallel.map_tasks`;
    output is identical for any ``workers``. ``waxman_alpha``/``waxman_beta`` change the
    random topologies (the paper states neither). Returns the written paths:
    ``smr_untrusted_sweep.csv``, ``smr_trusted_sweep.csv``, four PNG figures
    (paper Fig. 5a, 5b, 6a, 6b) and ``README.md``.
    """
    if runs < 2:
        raise ValidationError(f"runs={runs} must be at least 2 (a confidence interval needs 2)")
    if quick:
        runs = min(runs, QUICK_RUNS)
    exp = SmrExperiment(runs=runs, seed=seed, waxman_alpha=waxman_alpha, waxman_beta=waxman_beta)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    seeds = np.random.SeedSequence(seed).spawn(runs)
    nworkers = workers or default_workers()
    n_chunks = max(1, min(runs, nworkers * 8))
    chunks = [seeds[i::n_chunks] for i in range(n_chunks)]
    order = [list(range(runs))[i::n_chunks] for i in range(n_chunks)]
    results = map_tasks(_run_chunk, [(exp, c) for c in chunks], workers=nworkers)
    per_run: list[RunMetrics | None] = [None] * runs
    for idx, res in zip(order, results, strict=True):
        for i, r in zip(idx, res, strict=True):
            per_run[i] = r
    metrics = [r for r in per_run if r is not None]
    wall_s = time.perf_counter() - start
    logger.info("SMR reproduction: %d runs in %.1f s on %d workers", runs, wall_s, nworkers)
    tables = aggregate(exp, metrics)
    written = []
    for sweep, name in (
        ("untrusted", "smr_untrusted_sweep.csv"),
        ("trusted", "smr_trusted_sweep.csv"),
    ):
        path = out_dir / name
        _write_csv(path, tables[sweep])
        written.append(path)
    written += write_smr_figures(out_dir, tables, exp)
    mean_degree = float(np.mean([r.mean_degree for r in metrics]))
    written.append(_write_readme(out_dir, exp, wall_s=wall_s, workers=nworkers, mean_degree=mean_degree))
    return written


_STYLE = {"SMR": "C0", "MSP": "C3", "MSP-disjoint": "C4", "shortest": "C2", "disjoint": "C1"}
_EPS_LINE = {0.5: "-", 0.7: "--", 0.9: ":"}


def _save_png(fig: Any, path: Path) -> Path:
    """Lay out ``fig``, write it to ``path`` at 120 dpi and close it; returns ``path``."""
    import matplotlib.pyplot as plt  # already loaded by write_smr_figures (kept out of the workers' imports)

    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def write_smr_figures(out_dir: Path, tables: dict[str, list[dict[str, Any]]], exp: SmrExperiment) -> list[Path]:
    """The paper's Fig. 5a/5b (untrusted sweep) and 6a/6b (trusted sweep) as PNG files.

    Panel (a): end-to-end security (solid, left axis, with 95 % bands) and key
    consumption (dashed, right axis). Panel (b): global key
    length (kbit) per eps (line style) and method (colour).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    specs = [
        ("untrusted", "p_untrusted", "security probability of untrusted relays", "5"),
        ("trusted", "n_trusted", "number of trusted relays", "6"),
    ]
    mid_eps = exp.eps_values[len(exp.eps_values) // 2]
    for sweep, xcol, xlabel, fig_no in specs:
        rows = tables[sweep]
        fig, ax = plt.subplots(figsize=(6.4, 4.4))
        ax2 = ax.twinx()
        for method in METHODS:
            sel = [r for r in rows if r["method"] == method and r["eps"] == mid_eps]
            x = np.array([r[xcol] for r in sel], dtype=float)
            y = np.array([r["security_mean"] for r in sel])
            ci = np.array([r["security_ci"] for r in sel])
            cons = np.array([r["key_consumption_mean"] for r in sel], dtype=float)
            ax.plot(x, y, "-o", color=_STYLE[method], label=f"{method} security", ms=3)
            ax.fill_between(x, y - ci, y + ci, color=_STYLE[method], alpha=0.15, lw=0)
            ax2.plot(x, cons, "--s", color=_STYLE[method], label=f"{method} consumption", ms=3)
        ax.set_xlabel(xlabel)
        ax.set_ylabel("end-to-end security probability")
        ax2.set_ylabel("key consumption (link key bits per key bit)")
        ax.set_ylim(0, 1.02)
        lines = ax.get_legend_handles_labels()
        lines2 = ax2.get_legend_handles_labels()
        ax2.set_ylim(bottom=0)
        ax.legend(lines[0] + lines2[0], lines[1] + lines2[1], fontsize=7, loc="center right")
        ax.set_title(f"Fig. {fig_no}a: security and key consumption ({exp.runs} runs)")
        written.append(_save_png(fig, out_dir / f"smr_fig{fig_no}a_security_consumption.png"))

        fig, ax = plt.subplots(figsize=(6.4, 5.2))
        for method in METHODS:
            for eps in exp.eps_values:
                sel = [r for r in rows if r["method"] == method and r["eps"] == eps]
                x = np.array([r[xcol] for r in sel], dtype=float)
                y = np.array([r["key_length_mean"] for r in sel]) / 1000.0
                ax.plot(
                    x,
                    y,
                    _EPS_LINE.get(eps, "-"),
                    marker="o",
                    ms=3,
                    color=_STYLE[method],
                    label=f"{method}, eps={eps}",
                )
        ax.set_xlabel(xlabel)
        ax.set_ylabel("global key length (kbit)")
        ax.legend(fontsize=6, ncol=4, loc="upper center", bbox_to_anchor=(0.5, -0.14))
        ax.set_title(f"Fig. {fig_no}b: length of the global key ({exp.runs} runs)")
        written.append(_save_png(fig, out_dir / f"smr_fig{fig_no}b_key_length.png"))
    return written


def _write_readme(out_dir: Path, exp: SmrExperiment, *, wall_s: float, workers: int, mean_degree: float) -> Path:
    params = asdict(exp)
    lines = [
        "# SMR paper reproduction",
        "",
        "Wang, Li, Xue et al., *A Segment-based Multipath Distribution Method in",
        "Partially-Trusted Relay Quantum Networks*, IEEE Commun. Mag. 2023, Sec. IV.",
        "",
        "## Parameters",
        "",
        "| parameter | value |",
        "|---|---|",
    ]
    for key, val in params.items():
        lines.append(f"| {key} | {val} |")
    lines += [
        f"| waxman mean degree (measured) | {mean_degree:.2f} |",
        f"| workers | {workers} |",
        f"| wall time (s) | {wall_s:.1f} |",
        "",
        "Waxman edge probability: `beta * exp(-d / (alpha * L))`, nodes uniform in the unit",
        "square, `L` the largest node distance; disconnected draws are redrawn.",
        "Per run: one graph, a uniformly random request and a random order of the other nodes;",
        "the first `n_trusted` nodes of that order are the trusted relays.",
        "",
        "## Columns",
        "",
        "- `security_mean`, `security_ci`: end-to-end security with all path keys combined",
        "  (exact probability, 95 % normal half-width over runs); the same for every eps.",
        "- `key_length_mean`: global key bits delivered after flexible reconstruction at eps",
        "  (`m * block_bits`, block bits limited by the 100 kb link pools); 0 when eps is unmet.",
        "- `key_consumption_mean`: link key bits consumed per bit of end-to-end key when all",
        "  path keys are combined (total hops over all paths); the same for every eps.",
        "- `link_bits_per_key_bit`: link key bits the path keys consume (hops x block bits)",
        "  per global key bit delivered at eps (ratio of sums over runs; empty if none).",
        "- `paths_mean`: paths per request.",
        "",
        "## Methods",
        "",
        "- `SMR`: segment-based multipath routing (ExDijkstra, trusted-relay segments;",
        "  step-1 distances in hops).",
        "- `MSP`: multiple stochastic paths (random, node-disjoint where possible); "
        + (f"{exp.msp_paths} paths." if exp.msp_paths else "as many paths as SMR used."),
        "- `MSP-disjoint`: multiple stochastic paths, strictly node-disjoint, drawn until no",
        "  path is left.",
        "- `shortest`: one fewest-hop path.",
        "- `disjoint`: maximum set of node-disjoint paths (max flow).",
        "",
        "## Files",
        "",
        "- `smr_untrusted_sweep.csv`, `smr_trusted_sweep.csv`",
        "- `smr_fig5a_security_consumption.png`, `smr_fig5b_key_length.png` (sweep A)",
        "- `smr_fig6a_security_consumption.png`, `smr_fig6b_key_length.png` (sweep B)",
        "",
    ]
    path = out_dir / "README.md"
    path.write_text("\n".join(lines))
    return path
