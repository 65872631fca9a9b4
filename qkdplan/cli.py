"""Command-line interface: ``qkdplan plan | simulate | compare | reproduce | sweep | bench | doctor``.

This is the top of the dependency graph (nothing imports it). It is the only
place that configures logging, prints, and shows progress. Every error becomes
one clear message and an exit code (see :data:`EXIT_CODES_HELP`); Ctrl-C or
SIGTERM leaves no half-written output folder. Output folders follow
:mod:`planner.io.atomic`: nothing qkdplan did not write is deleted or overwritten.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from planner import __version__
from planner.errors import (
    InfeasibleDesignError,
    QkdplanError,
    SolverUnavailableError,
    ValidationError,
)

EXIT_OK = 0
EXIT_INTERNAL = 1
EXIT_USAGE = 2
EXIT_INFEASIBLE = 3
EXIT_SOLVER = 4
EXIT_INTERRUPTED = 130

EXIT_CODES_HELP = """exit codes:
  0    success
  1    internal error (a bug: please report it with the output of -vv)
  2    bad input: a file, setting, output folder or command-line option (the message names it and the fix);
       for 'sweep' also: some points failed (recorded in the results)
  3    infeasible: no design satisfies the scenario's constraints (the message names those in conflict)
  4    solver unavailable: the MILP solver (HiGHS) is not installed or cannot be used
  130  interrupted (Ctrl-C or SIGTERM); no partial output is left behind"""

_PLAN_FILES = ("design.json", "design.gpkg", "report.html")

console = Console(stderr=False, highlight=False)
err_console = Console(stderr=True, highlight=False, soft_wrap=True)  # a message is never cut inside a path


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="qkdplan",
        description="Plan quantum-key-distribution networks: access clusters, repeater backbones and trusted relays.",
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--version", action="version", version=f"qkdplan {__version__}")
    _add_verbosity(p, 0)
    common = argparse.ArgumentParser(add_help=False)
    _add_verbosity(common, argparse.SUPPRESS)
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    _orig_add = sub.add_parser

    def add_parser(name: str, **kw: Any) -> argparse.ArgumentParser:
        return _orig_add(
            name, parents=[common], epilog=EXIT_CODES_HELP, formatter_class=argparse.RawDescriptionHelpFormatter, **kw
        )

    sub.add_parser = add_parser  # type: ignore[method-assign]

    plan = sub.add_parser("plan", help="plan a network and write a design report")
    plan.add_argument(
        "network",
        nargs="?",
        help="sites/network file (CSV, GeoJSON, GPKG, SHP, GraphML, GML, "
        "SNDlib, QMAN JSON); default: the bundled SURFnet topology",
    )
    plan.add_argument("--scenario", "-s", help="scenario TOML file (default: bundled default scenario)")
    plan.add_argument(
        "--out",
        "-o",
        default="qkdplan-run",
        help="output folder (default: qkdplan-run); a folder holding other files is refused unless --force",
    )
    _add_force(plan)
    plan.add_argument(
        "--crs",
        default=None,
        help="CRS of CSV x/y columns and of GIS files that carry none, e.g. "
        "EPSG:28992 (default: scenario network.crs, else lat/lon degrees)",
    )
    plan.add_argument(
        "--geocode",
        action="store_true",
        default=None,
        help="locate named nodes without coordinates in the offline GeoNames gazetteer "
        "(needs pip install 'qkdplan[geo]'); default: place them from their neighbours",
    )
    plan.add_argument(
        "--strict-coordinates",
        action="store_true",
        default=None,
        help="refuse nodes without coordinates instead of placing them",
    )
    plan.add_argument("--seed", type=int, default=0, help="random seed recorded in the outputs (default 0)")
    plan.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a scenario setting, e.g. --set access.capacity=6 (repeatable)",
    )
    plan.add_argument(
        "--alternatives",
        metavar="FILE",
        help="TOML file with [[alternative]] entries of overrides; plans each and compares them",
    )
    plan.add_argument("--simulate", action="store_true", help="also verify the design by simulation")
    plan.add_argument(
        "--time-limit",
        type=float,
        default=None,
        metavar="S",
        help="bound the solver time of the whole plan to S seconds, split among the stages "
        "(default: solver.time_limit_s per stage)",
    )
    plan.add_argument(
        "--verify",
        action="store_true",
        help="plan, simulate and re-plan with more trusted relays, "
        "key-pool or memory until the targets are met (planner/stages/verify_loop.py)",
    )
    plan.add_argument("--verify-rounds", type=int, default=4, help="most plan-simulate rounds of --verify (default 4)")
    _executor_flags(plan)

    sim = sub.add_parser("simulate", help="verify a planned design by simulation")
    sim.add_argument("run_dir", help="folder written by 'qkdplan plan'")
    sim.add_argument("--requests", type=int, default=200, help="key requests per pair (default 200)")
    sim.add_argument("--duration", type=float, default=None, help="simulated seconds of traffic (overrides --requests)")
    sim.add_argument("--seed", type=int, default=0)
    _executor_flags(sim)

    cmp_ = sub.add_parser("compare", help="compare planned designs side by side")
    cmp_.add_argument("run_dirs", nargs="+", help="folders written by 'qkdplan plan'")
    cmp_.add_argument("--out", "-o", default="qkdplan-compare", help="output folder (default: qkdplan-compare)")
    _add_force(cmp_)

    rep = sub.add_parser("reproduce", help="reproduce the figures of the papers")
    rep.add_argument("paper", choices=["cluster", "smr"], help="which paper")
    rep.add_argument("--out", "-o", default=None, help="output folder (default: reproduce-<paper>)")
    rep.add_argument("--seed", type=int, default=0)
    rep.add_argument("--quick", action="store_true", help="fewer samples (seconds instead of a minute)")
    rep.add_argument("--runs", type=int, default=None, help="(smr) runs per point; default 1000, 50 with --quick")
    rep.add_argument("--workers", type=int, default=None, help="worker processes (default: all cores)")
    _add_force(rep)

    sw = sub.add_parser("sweep", help="run a parameter sweep (Dask)")
    sw.add_argument("spec", help="sweep specification TOML")
    sw.add_argument(
        "--scheduler",
        default=None,
        help="Dask scheduler address, e.g. tcp://host:8786 (default: a LocalCluster on this machine)",
    )
    sw.add_argument(
        "--scheduler-file",
        default=None,
        help="Dask scheduler file (JSON written by 'dask scheduler --scheduler-file FILE'); alternative to --scheduler",
    )
    sw.add_argument("--workers", type=int, default=None, help="local workers (default: all cores)")
    sw.add_argument(
        "--out",
        "-o",
        default="qkdplan-sweep",
        help="output folder (default: qkdplan-sweep); a previous sweep there is resumed",
    )
    _add_force(sw)

    bench = sub.add_parser("bench", help="run the size-swept benchmarks and write benchmarks/results.md")
    bench.add_argument("--quick", action="store_true", help="smallest sizes only")
    bench.add_argument("--out", "-o", default=None, help="output folder (default: benchmarks/)")

    sub.add_parser("doctor", help="report versions, the solver found and where bundled data lives")
    return p


def _add_verbosity(parser: argparse.ArgumentParser, default: Any) -> None:
    parser.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=default,
        help="more log output (-vv for debug); accepted before or after the command",
    )
    parser.add_argument("-q", "--quiet", action="count", default=default, help="only errors and the final result line")


def _add_force(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--force",
        action="store_true",
        help="write into a non-empty folder that was not written by qkdplan; qkdplan's files go "
        "beside the others, and nothing it did not write is deleted or overwritten",
    )


_QUIET = False
_VERBOSE = False


def _say(text: str) -> None:
    """Print a progress or summary line unless -q."""
    if not _QUIET:
        console.print(text)


def _configure_logging(verbosity: int) -> None:
    from rich.logging import RichHandler

    level = (
        logging.ERROR
        if verbosity < 0
        else logging.WARNING
        if verbosity == 0
        else logging.INFO
        if verbosity == 1
        else logging.DEBUG
    )
    logging.basicConfig(
        level=level, format="%(message)s", handlers=[RichHandler(console=err_console, show_path=False)], force=True
    )
    logging.getLogger("pyomo").setLevel(logging.ERROR)
    logging.getLogger("distributed").setLevel(logging.WARNING if verbosity else logging.ERROR)


def _parse_overrides(items: Sequence[str]) -> dict[str, Any]:
    import tomllib

    from planner.errors import ValidationError

    out: dict[str, Any] = {}
    for item in items:
        if "=" not in item:
            raise ValidationError(f"--set {item!r}: expected KEY=VALUE, e.g. access.capacity=6", source="command line")
        key, raw = item.split("=", 1)
        try:
            value = tomllib.loads(f"v = {raw}")["v"]
        except tomllib.TOMLDecodeError:
            value = raw  # a bare word is a string
        out[key.strip()] = value
    return out


def cmd_plan(args: argparse.Namespace) -> int:
    from planner.io.atomic import atomic_output_dir, check_output_dir
    from planner.io.bundled import DEFAULT_SCENARIO, bundled_path
    from planner.io.writers import write_design_files
    from planner.model.design import TABLES
    from planner.model.scenario import load_scenario
    from planner.pipeline import plan
    from reports.html import render_report

    network_path = Path(args.network) if args.network else bundled_path("topology-zoo/Surfnet.graphml")
    scenario_path = Path(args.scenario) if args.scenario else bundled_path(DEFAULT_SCENARIO)
    scenario = load_scenario(scenario_path)
    if args.set:
        scenario = scenario.with_overrides(_parse_overrides(args.set), source="--set")
    if args.time_limit is not None and not (0 < args.time_limit < float("inf")):
        raise ValidationError(f"--time-limit {args.time_limit:g}: give a number of seconds > 0", source="command line")
    inputs = [network_path, scenario_path] + ([Path(args.alternatives)] if args.alternatives else [])
    out = Path(args.out)
    expected = () if args.alternatives else (*_PLAN_FILES, *(f"{t}.csv" for t in TABLES))
    check_output_dir(out, inputs=inputs, force=args.force, expected=expected)
    if args.alternatives:
        return _plan_alternatives(args, network_path, scenario, inputs)
    t0 = time.perf_counter()
    with _StageProgress() as progress:
        progress("reading network")
        network = _read_network_for(args, network_path, scenario)
        _say(f"read {network.name}: {len(network.sites)} sites, {len(network.links)} links ({network_path.name})")
        sim = None
        if args.verify:
            from planner.simulate.design_check import write_simulation_files
            from planner.stages.verify_loop import verify_loop

            outcome = verify_loop(network, scenario, rounds=args.verify_rounds, seed=args.seed, progress=progress)
            design, sim = outcome.design, dict(outcome.simulation)
        else:
            design = plan(network, scenario, seed=args.seed, progress=progress, time_limit_s=args.time_limit)
        progress("writing outputs")
        with atomic_output_dir(out, inputs=inputs, force=args.force) as tmp:
            write_design_files(design, tmp)
            if sim is not None:
                write_simulation_files(sim, tmp)
            elif args.simulate:
                progress("simulating")
                sim = _run_simulation(design, tmp, requests=200, duration_s=None, seed=args.seed, network=network)
            render_report(design, tmp / "report.html", simulation=sim)
    _print_summary(design, out, time.perf_counter() - t0)
    for line in design.metrics.get("verify_verdict", []) if args.verify else []:
        console.print(_escape(line))
    return EXIT_OK


def _read_network_for(args: argparse.Namespace, network_path: Path, scenario: Any) -> Any:
    """Read the network with the scenario's [network] settings; command-line options win."""
    from planner.io.readers import read_network

    ns = scenario.network
    crs = args.crs or getattr(ns, "crs", "") or None
    geocode = args.geocode if args.geocode is not None else bool(getattr(ns, "geocode", False))
    strict = (
        args.strict_coordinates
        if args.strict_coordinates is not None
        else bool(getattr(ns, "strict_coordinates", False))
    )
    return read_network(
        network_path,
        route_factor=ns.route_factor,
        drop_external=ns.drop_external,
        crs=crs,
        geocode=geocode,
        strict_coordinates=strict,
    )


class _StageProgress:
    """The progress display of a command (:func:`planner.runtime.progress.display`); calling it starts a stage.

    Each stage prints one line ``  - <stage>`` as it starts (flushed, so a caller
    watching the output knows the run is inside that stage). On a terminal a
    live bar below shows the open stage and the counted work inside it with
    elapsed time and ETA, or for a solver stage how much of its time budget is
    left at most; otherwise plain status lines are written (at 25/50/75 % of
    counted work and at least every 10 s, every 2 s with ``-v``). ``-q``: nothing.
    The display is gone when the block ends, before any result is printed.
    """

    def __init__(self) -> None:
        self._display: Any = None
        self._tracker: Any = None

    def __enter__(self) -> _StageProgress:
        from planner.runtime.progress import display

        self._display = display(None if _QUIET else console, verbose=_VERBOSE)
        self._tracker = self._display.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._log_stage_time()
        self._display.__exit__(*exc)

    def _log_stage_time(self) -> None:
        prev = self._tracker.current_stage() if self._tracker is not None else None
        if prev is not None:
            logging.getLogger(__name__).info("%s: took %.1f s", prev.name, prev.elapsed_s())

    def __call__(self, stage: str) -> None:
        self._log_stage_time()
        self._tracker.stage(stage)
        sys.stdout.flush()


def _run_simulation(
    design: Any, folder: Path, *, requests: int, duration_s: float | None, seed: int, network: Any = None
) -> dict[str, Any]:
    from planner.simulate.design_check import simulate_design, write_simulation_files

    sim = simulate_design(design, requests=requests, duration_s=duration_s, seed=seed, network=network)
    write_simulation_files(sim, folder)
    return sim.to_dict()


def _plan_alternatives(args: argparse.Namespace, network_path: Path, scenario: Any, inputs: list[Path]) -> int:
    import tomllib

    from planner.errors import InputFormatError, ValidationError
    from planner.io.atomic import atomic_output_dir
    from planner.io.writers import write_design_files
    from planner.model.serialise import flatten
    from planner.pipeline import plan
    from reports.compare import write_comparison
    from reports.html import render_report

    alt_path = Path(args.alternatives)
    if not alt_path.is_file():
        raise InputFormatError(f"alternatives file not found: {alt_path}", source=str(alt_path))
    try:
        spec = tomllib.loads(alt_path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise InputFormatError(f"{alt_path}: not valid TOML ({exc})", source=str(alt_path)) from None
    alts = spec.get("alternative")
    if not isinstance(alts, list) or not alts:
        raise ValidationError(
            f"{alt_path}: needs one or more [[alternative]] tables with a 'name' and overrides", source=str(alt_path)
        )
    variants = []
    for i, alt in enumerate(alts):
        if not isinstance(alt, dict) or not isinstance(alt.get("name"), str):
            raise ValidationError(f"{alt_path}: alternative[{i}] needs a string 'name'", source=str(alt_path))
        overrides = {k: v for k, v in flatten(alt).items() if k != "name"}
        variants.append((alt["name"], scenario.with_overrides(overrides, source=f"{alt_path}: alternative[{i}]")))
    from planner.runtime.progress import current_tracker

    network = _read_network_for(args, network_path, scenario)
    out = Path(args.out)
    with _StageProgress() as progress, atomic_output_dir(out, inputs=inputs, force=args.force) as tmp:
        run_dirs = []
        tracker = current_tracker()
        with tracker.task("alternatives", total=len(variants), unit="plans") as planned:
            for name, sc in variants:
                _say(f"planning alternative [bold]{_escape(name)}[/]")
                design = plan(network, sc, seed=args.seed, progress=progress)
                progress(f"{name}: writing outputs")
                d = tmp / name
                d.mkdir()
                write_design_files(design, d)
                render_report(design, d / "report.html")
                run_dirs.append(d)
                tracker.end_stage()
                planned.advance()
        progress("comparing the alternatives")
        write_comparison(run_dirs, tmp / "comparison")
    console.print(f"wrote {len(variants)} alternatives and comparison to {out}/comparison/comparison.html")
    return EXIT_OK


def _print_summary(design: Any, out: Path, elapsed_s: float) -> None:
    m = design.metrics
    if _QUIET:
        console.print(f"wrote {out}/report.html")
        return
    t = Table(title=f"qkdplan design: {design.network_name}", show_header=False)
    rows = [
        ("sites / clusters / standalone", f"{m.get('n_sites')} / {m.get('n_clusters')} / {m.get('n_standalone')}"),
        ("keys per attempt (Eq. 6, all clusters)", f"{m.get('total_keys_per_attempt', 0):.4g}"),
        ("backbone links / km", f"{m.get('n_backbone_links')} / {m.get('backbone_km', 0):.1f}"),
        ("repeaters", str(m.get("n_repeaters"))),
        ("trusted relays", str(m.get("n_trusted"))),
        ("min demand rate (pairs/attempt)", _g(m.get("min_demand_rate"))),
        ("min security (SMR)", _g(m.get("min_security"))),
    ]
    for stage, s in design.solves.items():
        secs = design.timing.get(f"{stage}.solve_time_s")
        rows.append((f"solver: {stage}", f"{s.get('status')}, gap {_g(s.get('gap'))}, {_g(secs)} s"))
    for k, v in rows:
        t.add_row(k, v)
    console.print(t)
    console.print(f"wrote [bold]{out}/report.html[/], design.json, design.gpkg and CSV tables in {elapsed_s:.1f} s")


def _g(x: Any) -> str:
    return "-" if x is None else f"{x:.4g}" if isinstance(x, float) else str(x)


def cmd_simulate(args: argparse.Namespace) -> int:
    from planner.io.atomic import atomic_output_dir
    from planner.model.design import Design
    from reports.html import render_report

    run = Path(args.run_dir)
    design = Design.read(run)
    # only the simulation files and report.html are (re)written; everything else in the run folder stays
    with _StageProgress() as progress, atomic_output_dir(run, keep_previous=True, option="RUN folder") as tmp:
        progress("simulating key traffic")
        sim = _run_simulation(design, tmp, requests=args.requests, duration_s=args.duration, seed=args.seed)
        progress("writing the report")
        render_report(design, tmp / "report.html", simulation=sim)
    from planner.simulate.design_check import summary_lines

    for line in summary_lines(sim):
        _say(f"  - {_escape(line)}")
    console.print(f"wrote {run}/simulation.json and updated report.html")
    return EXIT_OK


def cmd_compare(args: argparse.Namespace) -> int:
    from planner.io.atomic import atomic_output_dir
    from reports.compare import write_comparison

    out = Path(args.out)
    runs = [Path(r) for r in args.run_dirs]
    with _StageProgress() as progress, atomic_output_dir(out, inputs=runs, force=args.force) as tmp:
        progress(f"comparing {len(runs)} runs")
        table = write_comparison(runs, tmp)
    console.print(table.to_string(index=False))
    console.print(f"wrote {out}/comparison.html and comparison.csv")
    return EXIT_OK


def cmd_reproduce(args: argparse.Namespace) -> int:
    from planner.io.atomic import atomic_output_dir

    out = Path(args.out or f"reproduce-{args.paper}")
    with _StageProgress() as progress, atomic_output_dir(out, force=args.force) as tmp:
        progress(f"reproducing the {args.paper} paper")
        if args.paper == "cluster":
            from reports.reproduce_cluster import reproduce_cluster

            files = reproduce_cluster(tmp, seed=args.seed, quick=args.quick)
        else:
            from reports.reproduce_smr import reproduce_smr

            runs = args.runs or (50 if args.quick else 1000)
            files = reproduce_smr(tmp, runs=runs, seed=args.seed, quick=args.quick, workers=args.workers)
    console.print(f"wrote {len(files)} files to {out}/ (see {out}/README.md)")
    return EXIT_OK


def cmd_sweep(args: argparse.Namespace) -> int:
    from planner.io.atomic import SWEEP_ENTRIES, check_output_dir, mark_output_dir
    from planner.runtime.scheduler import resolve_scheduler
    from planner.sweep.runner import run_sweep

    out = Path(args.out)
    check_output_dir(out, inputs=[Path(args.spec)], force=args.force, expected=SWEEP_ENTRIES, keep_previous=True)
    address = resolve_scheduler(args.scheduler, args.scheduler_file)
    mark_output_dir(out, SWEEP_ENTRIES)
    result = run_sweep(
        Path(args.spec),
        out_dir=out,
        scheduler_address=address,
        workers=args.workers,
        console=None if _QUIET else console,
    )
    console.print(result.summary())
    return EXIT_OK if result.n_failed == 0 else EXIT_USAGE


def cmd_bench(args: argparse.Namespace) -> int:
    from qkdplan.benchrunner import run_benchmarks

    path = run_benchmarks(quick=args.quick, out_dir=Path(args.out) if args.out else None, console=console)
    console.print(f"wrote {path}")
    return EXIT_OK


def cmd_doctor(args: argparse.Namespace) -> int:
    import platform
    from importlib.metadata import PackageNotFoundError, version

    from planner.io.bundled import bundled_networks, datasets_dir
    from solvers.highs_driver import solver_available

    t = Table(title="qkdplan doctor", show_header=False)
    t.add_row("qkdplan", __version__)
    t.add_row("python", f"{platform.python_version()} ({sys.executable})")
    for pkg in (
        "pyomo",
        "highspy",
        "networkx",
        "numpy",
        "scipy",
        "pandas",
        "geopandas",
        "pyogrio",
        "shapely",
        "pyproj",
        "matplotlib",
        "dask",
        "distributed",
        "rich",
        "jinja2",
    ):
        try:
            t.add_row(pkg, version(pkg))
        except PackageNotFoundError:
            t.add_row(pkg, "[red]not installed[/]")
    t.add_row("MILP solver", "HiGHS available" if solver_available("highs") else "[red]HiGHS not available[/]")
    t.add_row("bundled data", str(datasets_dir()))
    t.add_row("bundled networks", ", ".join(p.name for p in bundled_networks()))
    console.print(t)
    return EXIT_OK if solver_available("highs") else EXIT_SOLVER


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "plan": cmd_plan,
    "simulate": cmd_simulate,
    "compare": cmd_compare,
    "reproduce": cmd_reproduce,
    "sweep": cmd_sweep,
    "bench": cmd_bench,
    "doctor": cmd_doctor,
}


def _executor_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--workers",
        type=int,
        default=None,
        help="worker processes for the SMR checks and the simulation (default: all cores)",
    )
    p.add_argument(
        "--scheduler",
        default=None,
        help="Dask scheduler address (tcp://host:8786) to spread the SMR checks and the simulation over",
    )
    p.add_argument(
        "--scheduler-file",
        default=None,
        help="Dask scheduler file (JSON written by 'dask scheduler --scheduler-file FILE'); alternative to --scheduler",
    )


def _executor(args: argparse.Namespace) -> Any:
    """The executor context of ``plan`` / ``simulate`` (``--workers``, ``--scheduler``); a no-op otherwise."""
    import contextlib

    from planner.runtime.parallel import use_executor

    if args.command not in ("plan", "simulate"):
        return contextlib.nullcontext()
    if args.workers is not None and args.workers < 1:
        raise ValidationError(f"--workers {args.workers}: give at least 1", source="command line")
    from planner.runtime.parallel import default_workers
    from planner.runtime.scheduler import resolve_scheduler

    address = resolve_scheduler(args.scheduler, args.scheduler_file)
    return use_executor(workers=args.workers or default_workers(), scheduler_address=address)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``qkdplan`` command; returns the exit code."""
    global _QUIET, _VERBOSE
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    verbosity = int(args.verbose) - int(args.quiet)
    _QUIET = args.quiet > 0
    _VERBOSE = verbosity > 0
    _configure_logging(verbosity)
    from planner.io.atomic import sigterm_as_interrupt

    try:
        with sigterm_as_interrupt(), _executor(args):
            return COMMANDS[args.command](args)
    except InfeasibleDesignError as exc:
        err_console.print(f"[bold red]infeasible design:[/] {_escape(str(exc))}")
        return EXIT_INFEASIBLE
    except SolverUnavailableError as exc:
        err_console.print(f"[bold red]solver unavailable:[/] {_escape(str(exc))} (run 'qkdplan doctor')")
        return EXIT_SOLVER
    except QkdplanError as exc:
        err_console.print(f"[bold red]error:[/] {_escape(str(exc))}")
        return EXIT_USAGE
    except KeyboardInterrupt:
        if args.command == "sweep":
            err_console.print(
                f"[bold yellow]interrupted:[/] finished points are kept in {_escape(args.out)}/points.jsonl;"
                " run the same command again to resume"
            )
        else:
            err_console.print(
                "[bold yellow]interrupted:[/] stopped before finishing; no partial output was written "
                "(a previous complete output, if any, is unchanged)"
            )
        return EXIT_INTERRUPTED
    except Exception as exc:  # noqa: BLE001 - the last resort: one message, never a bare traceback
        if verbosity >= 2:
            import traceback

            traceback.print_exc()
        err_console.print(
            f"[bold red]internal error:[/] {_escape(type(exc).__name__)}: {_escape(str(exc))}\n"
            "This is a bug in qkdplan; please report it with the output of the same command "
            "run with -vv."
        )
        return EXIT_INTERNAL
    finally:
        _QUIET = _VERBOSE = False


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
