"""Command-line interface: ``qkdplan plan | simulate | compare | reproduce | sweep | bench | doctor``.

This is the top of the dependency graph (nothing imports it): the commands and
their error handling. Their options are declared in :mod:`qkdplan.cli_parser`; the
consoles, logging, the progress display and the summary table in
:mod:`qkdplan.cli_output`. These three are the only place that configures logging,
prints, and shows progress. Library modules are imported inside the commands, so
``qkdplan --help`` starts fast. Every error becomes
one clear message and an exit code (see :data:`EXIT_CODES_HELP`); Ctrl-C or
SIGTERM leaves no half-written output folder. Output folders follow
:mod:`planner.io.atomic`: nothing qkdplan did not write is deleted or overwritten.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from rich.table import Table

from planner import __version__
from planner.errors import (
    InfeasibleDesignError,
    InputFormatError,
    QkdplanError,
    SolverUnavailableError,
    ValidationError,
)
from qkdplan.cli_output import (
    StageProgress,
    configure_logging,
    console,
    err_console,
    escape,
    is_quiet,
    print_summary,
    say,
    set_verbosity,
)
from qkdplan.cli_parser import (
    EXIT_CODES_HELP,
    EXIT_INFEASIBLE,
    EXIT_INTERNAL,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_SOLVER,
    EXIT_USAGE,
    build_parser,
)

__all__ = ["COMMANDS", "EXIT_CODES_HELP", "main"]

_PLAN_FILES = ("design.json", "design.gpkg", "report.html")


def _parse_overrides(items: Sequence[str]) -> dict[str, Any]:
    """``--set KEY=VALUE`` items as dotted keys to TOML values (a bare word is a string)."""
    import tomllib

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
    with StageProgress() as progress:
        progress("reading network")
        network = _read_network_for(args, network_path, scenario)
        say(f"read {network.name}: {len(network.sites)} sites, {len(network.links)} links ({network_path.name})")
        sim = None
        if args.verify:
            from planner.simulate.design_check import write_simulation_files
            from planner.stages.verify_loop import verify_loop

            outcome = verify_loop(network, scenario, rounds=args.verify_rounds, seed=args.seed, progress=progress)
            design, sim = outcome.design, dict(outcome.simulation)
        else:
            design = plan(
                network, scenario, seed=args.seed, progress=progress, time_limit_s=_plan_limit(args, t0, network)
            )
        progress("writing outputs")
        with atomic_output_dir(out, inputs=inputs, force=args.force) as tmp:
            write_design_files(design, tmp)
            if sim is not None:
                write_simulation_files(sim, tmp)
            elif args.simulate:
                progress("simulating")
                sim = _run_simulation(design, tmp, requests=200, duration_s=None, seed=args.seed, network=network)
            render_report(design, tmp / "report.html", simulation=sim)
    print_summary(design, out, time.perf_counter() - t0)
    if args.time_limit is not None and not (args.verify or args.simulate):
        _say_overrun(design, args.time_limit, time.perf_counter() - t0)
    for line in design.metrics.get("verify_verdict", []) if args.verify else []:
        console.print(escape(line))
    return EXIT_OK


def _plan_limit(args: argparse.Namespace, t0: float, network: Any) -> float | None:
    """The plan's share of ``--time-limit``: the limit less the time spent reading, keeping time to write
    the outputs (:func:`planner.stages.budget.plan_time_left`); None without a limit."""
    if args.time_limit is None:
        return None
    from planner.stages.budget import plan_time_left

    return plan_time_left(float(args.time_limit), time.perf_counter() - t0, len(network.sites))


def _say_overrun(design: Any, limit_s: float, elapsed_s: float) -> None:
    """Say when a run took longer than ``--time-limit`` (by more than a second), naming the stages that
    passed their budgets: a limit is a promise, and a broken one is reported, not hidden."""
    if elapsed_s <= limit_s + 1.0:
        return
    over = [
        f"{stage} {design.timing[key]:.0f} s of {design.timing[f'{stage}.budget_s']:.0f} s"
        for key in sorted(design.timing)
        if key.endswith(".stage_s")
        and (stage := key.removesuffix(".stage_s"))
        and design.timing[key] > design.timing.get(f"{stage}.budget_s", float("inf")) + 1.0
    ]
    err_console.print(
        escape(
            f"note: the run took {elapsed_s:.0f} s, {elapsed_s - limit_s:.0f} s over --time-limit {limit_s:g}"
            + (f" (stages over their budgets: {', '.join(over)})" if over else " (reading, preparing and writing)")
        )
    )


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


def _run_simulation(
    design: Any, folder: Path, *, requests: int, duration_s: float | None, seed: int, network: Any = None
) -> dict[str, Any]:
    from planner.simulate.design_check import simulate_design, write_simulation_files

    sim = simulate_design(design, requests=requests, duration_s=duration_s, seed=seed, network=network)
    write_simulation_files(sim, folder)
    return sim.to_dict()


def _plan_alternatives(args: argparse.Namespace, network_path: Path, scenario: Any, inputs: list[Path]) -> int:
    import tomllib

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
    with StageProgress() as progress, atomic_output_dir(out, inputs=inputs, force=args.force) as tmp:
        run_dirs = []
        tracker = current_tracker()
        with tracker.task("alternatives", total=len(variants), unit="plans") as planned:
            for name, sc in variants:
                say(f"planning alternative [bold]{escape(name)}[/]")
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


def cmd_simulate(args: argparse.Namespace) -> int:
    from planner.io.atomic import atomic_output_dir
    from planner.model.design import Design
    from reports.html import render_report

    run = Path(args.run_dir)
    design = Design.read(run)
    # only the simulation files and report.html are (re)written; everything else in the run folder stays
    with StageProgress() as progress, atomic_output_dir(run, keep_previous=True, option="RUN folder") as tmp:
        progress("simulating key traffic")
        sim = _run_simulation(design, tmp, requests=args.requests, duration_s=args.duration, seed=args.seed)
        progress("writing the report")
        render_report(design, tmp / "report.html", simulation=sim)
    from planner.simulate.design_check import summary_lines

    for line in summary_lines(sim):
        say(f"  - {escape(line)}")
    console.print(f"wrote {run}/simulation.json and updated report.html")
    return EXIT_OK


def cmd_compare(args: argparse.Namespace) -> int:
    from planner.io.atomic import atomic_output_dir
    from reports.compare import write_comparison

    out = Path(args.out)
    runs = [Path(r) for r in args.run_dirs]
    with StageProgress() as progress, atomic_output_dir(out, inputs=runs, force=args.force) as tmp:
        progress(f"comparing {len(runs)} runs")
        table = write_comparison(runs, tmp)
    console.print(table.to_string(index=False))
    console.print(f"wrote {out}/comparison.html and comparison.csv")
    return EXIT_OK


def cmd_reproduce(args: argparse.Namespace) -> int:
    from planner.io.atomic import atomic_output_dir

    out = Path(args.out or f"reproduce-{args.paper}")
    with StageProgress() as progress, atomic_output_dir(out, force=args.force) as tmp:
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
        console=None if is_quiet() else console,
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
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    verbosity = int(args.verbose) - int(args.quiet)
    set_verbosity(quiet=args.quiet > 0, verbose=verbosity > 0)
    configure_logging(verbosity)
    from planner.io.atomic import sigterm_as_interrupt

    try:
        with sigterm_as_interrupt(), _executor(args):
            return COMMANDS[args.command](args)
    except InfeasibleDesignError as exc:
        err_console.print(f"[bold red]infeasible design:[/] {escape(str(exc))}")
        return EXIT_INFEASIBLE
    except SolverUnavailableError as exc:
        err_console.print(f"[bold red]solver unavailable:[/] {escape(str(exc))} (run 'qkdplan doctor')")
        return EXIT_SOLVER
    except QkdplanError as exc:
        err_console.print(f"[bold red]error:[/] {escape(str(exc))}")
        return EXIT_USAGE
    except KeyboardInterrupt:
        if args.command == "sweep":
            err_console.print(
                f"[bold yellow]interrupted:[/] finished points are kept in {escape(args.out)}/points.jsonl;"
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
            f"[bold red]internal error:[/] {escape(type(exc).__name__)}: {escape(str(exc))}\n"
            "This is a bug in qkdplan; please report it with the output of the same command "
            "run with -vv."
        )
        return EXIT_INTERNAL
    finally:
        set_verbosity(quiet=False, verbose=False)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
