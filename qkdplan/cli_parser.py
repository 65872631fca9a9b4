"""The argument parser of the ``qkdplan`` command: one function per subcommand's options.

Only the standard library is imported here, so ``qkdplan --help`` stays fast.
"""

from __future__ import annotations

import argparse
from typing import Any

from planner import __version__

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


def build_parser() -> argparse.ArgumentParser:
    """The parser of every subcommand; ``-v`` / ``-q`` are accepted before or after the command."""
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

    def add(name: str, help_text: str) -> argparse.ArgumentParser:
        return sub.add_parser(
            name,
            help=help_text,
            parents=[common],
            epilog=EXIT_CODES_HELP,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )

    _plan_args(add("plan", "plan a network and write a design report"))
    _simulate_args(add("simulate", "verify a planned design by simulation"))
    _compare_args(add("compare", "compare planned designs side by side"))
    _reproduce_args(add("reproduce", "reproduce the figures of the papers"))
    _sweep_args(add("sweep", "run a parameter sweep (Dask)"))
    _bench_args(add("bench", "run the size-swept benchmarks and write benchmarks/results.md"))
    add("doctor", "report versions, the solver found and where bundled data lives")
    return p


def _plan_args(plan: argparse.ArgumentParser) -> None:
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


def _simulate_args(sim: argparse.ArgumentParser) -> None:
    sim.add_argument("run_dir", help="folder written by 'qkdplan plan'")
    sim.add_argument("--requests", type=int, default=200, help="key requests per pair (default 200)")
    sim.add_argument("--duration", type=float, default=None, help="simulated seconds of traffic (overrides --requests)")
    sim.add_argument("--seed", type=int, default=0)
    _executor_flags(sim)


def _compare_args(cmp_: argparse.ArgumentParser) -> None:
    cmp_.add_argument("run_dirs", nargs="+", help="folders written by 'qkdplan plan'")
    cmp_.add_argument("--out", "-o", default="qkdplan-compare", help="output folder (default: qkdplan-compare)")
    _add_force(cmp_)


def _reproduce_args(rep: argparse.ArgumentParser) -> None:
    rep.add_argument("paper", choices=["cluster", "smr"], help="which paper")
    rep.add_argument("--out", "-o", default=None, help="output folder (default: reproduce-<paper>)")
    rep.add_argument("--seed", type=int, default=0)
    rep.add_argument("--quick", action="store_true", help="fewer samples (seconds instead of a minute)")
    rep.add_argument("--runs", type=int, default=None, help="(smr) runs per point; default 1000, 50 with --quick")
    rep.add_argument("--workers", type=int, default=None, help="worker processes (default: all cores)")
    _add_force(rep)


def _sweep_args(sw: argparse.ArgumentParser) -> None:
    sw.add_argument("spec", help="sweep specification TOML")
    sw.add_argument(
        "--scheduler",
        default=None,
        help="Dask scheduler address, e.g. tcp://host:8786 (default: a LocalCluster on this machine)",
    )
    sw.add_argument("--scheduler-file", default=None, help=_SCHEDULER_FILE_HELP)
    sw.add_argument("--workers", type=int, default=None, help="local workers (default: all cores)")
    sw.add_argument(
        "--out",
        "-o",
        default="qkdplan-sweep",
        help="output folder (default: qkdplan-sweep); a previous sweep there is resumed",
    )
    _add_force(sw)


def _bench_args(bench: argparse.ArgumentParser) -> None:
    bench.add_argument("--quick", action="store_true", help="smallest sizes only")
    bench.add_argument("--out", "-o", default=None, help="output folder (default: benchmarks/)")


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


_SCHEDULER_FILE_HELP = (
    "Dask scheduler file (JSON written by 'dask scheduler --scheduler-file FILE'); alternative to --scheduler"
)


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
    p.add_argument("--scheduler-file", default=None, help=_SCHEDULER_FILE_HELP)
