"""SNDlib native format: ``NODES ( id ( lon lat ) ... )`` and ``LINKS ( id ( u v ) ... )`` sections."""

from __future__ import annotations

import logging
import re
from pathlib import Path

from planner.errors import InputFormatError, ProblemCollector
from planner.io.records import (
    RawLink,
    RawNetwork,
    RawSite,
    raise_if_any,
    read_text,
)

log = logging.getLogger(__name__)


_SND_NODE = re.compile(r"^(\S+)\s*\(\s*(\S+)\s+(\S+)\s*\)\s*$")
_SND_LINK = re.compile(r"^(\S+)\s*\(\s*(\S+)\s+(\S+)\s*\)(.*)$")


def read_sndlib(file: Path, *, crs: str | None, drop_external: bool) -> RawNetwork:
    """SNDlib native format: ``NODES ( id ( lon lat ) ... )`` and ``LINKS ( id ( u v ) ... )``.

    Other sections (META, DEMANDS, ADMISSIBLE_PATHS) are skipped; link costs
    and capacities are kept as a ``sndlib_fields`` text column. SNDlib gives
    no fibre lengths, so links get great-circle x route factor.
    """
    src = str(file)
    problems = ProblemCollector(source=src)
    sections = _sections(read_text(file), src, problems)
    raise_if_any(problems, InputFormatError)
    meta_name = None
    for _, line in sections.get("META", []):
        m = re.match(r"^name\s*=\s*(.+)$", line)
        if m:
            meta_name = m.group(1).strip()
    sites: list[RawSite] = []
    for line_no, line in sections["NODES"]:
        m = _SND_NODE.match(line)
        if not m:
            problems.add(
                f"{src}, line {line_no}",
                f"node line not understood: {line[:60]!r}",
                "write '<id> ( <longitude> <latitude> )'",
            )
            continue
        nid, lon, lat = m.groups()
        sites.append(RawSite(where=f"line {line_no} (node {nid!r})", site_id=nid, name=nid, lat=lat, lon=lon))
    links: list[RawLink] = []
    for line_no, line in sections.get("LINKS", []):
        m = _SND_LINK.match(line)
        if not m:
            problems.add(
                f"{src}, line {line_no}",
                f"link line not understood: {line[:60]!r}",
                "write '<id> ( <source> <target> ) ...'",
            )
            continue
        lid, u, v, rest = m.groups()
        links.append(
            RawLink(
                where=f"line {line_no} (link {lid!r})",
                u=u,
                v=v,
                extra={"sndlib_id": lid, "sndlib_fields": rest.strip()},
            )
        )
    if "DEMANDS" in sections:
        log.info("%s: DEMANDS section ignored (site demand weights default to 1)", src)
    raise_if_any(problems, InputFormatError)
    return sites, links, {"name": meta_name}


def _sections(text: str, src: str, problems: ProblemCollector) -> dict[str, list[tuple[int, str]]]:
    """Section name -> its (line number, content) lines, comments and blank lines left out.

    Records text outside a section, a repeated or unclosed section and a missing NODES section.
    """
    sections: dict[str, list[tuple[int, str]]] = {}
    current: str | None = None
    opened_at = 0
    for line_no, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line or line.startswith("?"):
            continue
        if current is None:
            m = re.match(r"^([A-Z_]+)\s*\($", line)
            if m:
                current, opened_at = m.group(1), line_no
                if current in sections:
                    problems.add(
                        f"{src}, line {line_no}",
                        f"section {current} appears twice",
                        "keep one section of each kind",
                    )
                sections.setdefault(current, [])
            else:
                problems.add(
                    f"{src}, line {line_no}",
                    f"text outside a section: {line[:60]!r}",
                    "put content inside NODES ( ... ) or LINKS ( ... )",
                )
            continue
        if line == ")":
            current = None
            continue
        sections[current].append((line_no, line))
    if current is not None:
        problems.add(
            f"{src}, line {opened_at}",
            f"section {current} is never closed",
            "end the section with a line holding ')'",
        )
    if "NODES" not in sections:
        problems.add(
            src,
            "no NODES section",
            "add 'NODES (' ... ')' with one '<id> ( <lon> <lat> )' per line",
        )
    return sections
