"""First stage of the pipeline: the network as the planner uses it.

:func:`prepare_network` adds candidate fibre links where the input has none or is
disconnected (or the scenario asks for them), and says what it did;
:func:`inferred_position_notes` names the sites whose position was not in the input.
The design verification (:mod:`planner.simulate.design_check`) prepares a network the same way.
"""

from __future__ import annotations

from typing import Literal

from planner.errors import ValidationError
from planner.model.network import Network
from planner.model.scenario import Scenario


def inferred_position_notes(network: Network) -> list[str]:
    """One note listing the sites whose position was inferred (not given in the input), if any."""
    if "position_source" not in network.sites.columns:
        return []
    src = network.sites["position_source"].astype(str)
    inferred = src[src != "given"]
    if inferred.empty:
        return []
    names = network.sites.loc[inferred.index, "name"].astype(str)
    items = ", ".join(f"{n} ({s})" for n, s in zip(names, inferred, strict=True))
    return [
        f"{len(inferred)} site position(s) were not in the input and were inferred (see column "
        f"position_source of sites.csv and design.gpkg; junction/neighbours: centroid of linked sites, "
        f"gazetteer: looked up by name): {items}."
    ]


def prepare_network(network: Network, scenario: Scenario) -> tuple[Network, list[str]]:
    """Return the network with candidate links added when needed, and notes on what was done.

    Links are added (``network.candidate_links``: ``delaunay`` or ``knn``) when the scenario
    asks for them, or under ``auto`` when the input has no links or is disconnected. Raises
    :class:`~planner.errors.ValidationError` for a network of fewer than two sites.
    """
    notes: list[str] = inferred_position_notes(network)
    mode = scenario.network.candidate_links
    if len(network.sites) < 2:
        raise ValidationError(
            f"{network.source}: the network has {len(network.sites)} site(s); planning needs "
            "at least 3 (a master and two slaves)",
            source=network.source,
        )
    needs = len(network.links) == 0 or len(network.connected_components()) > 1
    if mode in ("delaunay", "knn") or (mode == "auto" and needs):
        method: Literal["delaunay", "knn"] = "knn" if mode == "knn" else "delaunay"
        before = len(network.links)
        network = network.with_candidate_links(method=method, k=scenario.network.knn_k)
        added = len(network.links) - before
        if added:
            notes.append(
                f"{added} candidate fibre links were generated ({method}) because the input "
                + ("had no links." if before == 0 else "was disconnected." if mode == "auto" else "asked for it.")
            )
    return network, notes
