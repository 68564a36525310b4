"""The headline figures of the HTML page, one row of four per side: each a typed `Tile` worked out from
the Summary's tiles, with its colour and the note that says what it counts (or, without a value, why:
"No data yet", or nothing in the period). templates/panels.html draws them (`tile`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from . import charts
from .figures import GB, size_text, size_unit
from .panels import empty
from .summary import Summary


@dataclass(frozen=True)
class Tile:
    """A headline figure: `value` (None: it reads "–" and `note` says why) in `unit`, its colour
    `level` (blue, green, amber, red), and the note under it."""

    key: str
    label: str
    value: str | None
    unit: str
    level: str
    note: str


def _rate_level(rate: float) -> str:
    return "green" if rate >= 0.99 else "amber" if rate >= 0.9 else "red"


# ------------------------------------------------------------------ backup
def backup_machines(s: Summary) -> Tile:
    t = s.tiles
    label = "Machines backed up"
    if not t.backup_machines:
        return Tile(
            "backup-machines", label, None, "", "blue", f"{charts.NO_DATA}: no backup task or restore point"
        )
    computers = t.backup_agent_computers
    note = (
        f"with a restore point EM still lists, of {t.backup_machines:,} seen "
        f"({t.backup_machines - computers:,} VMs, {computers:,} agent computers)"
    )
    return Tile("backup-machines", label, f"{t.backup_machines_protected:,}", "", "blue", note)


def backup_breaches(s: Summary) -> Tile:
    t = s.tiles
    label = "Backup RPO breaches"
    if not t.backup_machines:
        return Tile("backup-breaches", label, None, "", "red", f"{charts.NO_DATA}: no machine to check")
    level = "red" if t.backup_rpo_breaches else "green"
    note = f"machines without a restore point or a successful backup within {s.backup_rpo_hours:g} h"
    return Tile("backup-breaches", label, f"{t.backup_rpo_breaches:,}", "", level, note)


def backup_success(s: Summary) -> Tile:
    rate = s.tiles.backup_success_rate_7d
    label = "Backup success 7 days"
    if rate is None:
        why = f"{empty(s, '', 'backup')[0]}: no backup run finished in the last 7 days"
        return Tile("backup-success", label, None, "", "blue", why)
    note = "of finished runs, retries folded in"
    return Tile("backup-success", label, f"{rate * 100:.1f}", "%", _rate_level(rate), note)


def repositories_low(s: Summary) -> Tile:
    t = s.tiles
    label = "Repositories low on space"
    if not t.repositories:
        return Tile("repos-low", label, None, "", "blue", f"{charts.NO_DATA}: no repository loaded")
    unknown = t.repositories_unknown_capacity
    note = f"below {s.repository_low_free_pct:g} % free, of {t.repositories:,}" + (
        f"; {unknown:,} of unknown capacity" if unknown else ""
    )
    level = "red" if t.repositories_low else "green"
    return Tile("repos-low", label, f"{t.repositories_low:,}", "", level, note)


# ------------------------------------------------------------------ replication
def vms(s: Summary) -> Tile:
    t = s.tiles
    if not t.vms_protected:
        return Tile(
            "vms", "VMs replicated", None, "", "blue", f"{charts.NO_DATA}: no replication task loaded"
        )
    return Tile(
        "vms", "VMs replicated", f"{t.vms_protected:,}", "", "blue", f"{t.rpo_amber:,} need attention"
    )


def breaches(s: Summary) -> Tile:
    t = s.tiles
    if not t.vms_protected:
        return Tile("breaches", "Replica RPO breaches", None, "", "red", f"{charts.NO_DATA}: no VM to check")
    level = "red" if t.rpo_breaches else "green"
    note = f"VMs without a replication success within {s.rpo_hours:g} h"
    return Tile("breaches", "Replica RPO breaches", f"{t.rpo_breaches:,}", "", level, note)


def success(s: Summary) -> Tile:
    rate = s.tiles.success_rate_7d
    label = "Replication success 7 days"
    if rate is None:
        why = f"{empty(s, '')[0]}: no run finished in the last 7 days"
        return Tile("success", label, None, "", "blue", why)
    return Tile(
        "success", label, f"{rate * 100:.1f}", "%", _rate_level(rate), "of finished runs, retries folded in"
    )


def source(s: Summary) -> Tile:
    t = s.tiles
    label = "Source size 24 h"
    if not t.tasks_last_24h:
        return Tile("gb", label, None, "", "blue", f"{empty(s, '')[0]}: no task ended in the last 24 h")
    unit, per = size_unit(t.gb_last_24h)
    return Tile(
        "gb",
        label,
        size_text(round(t.gb_last_24h * GB), unit, per),
        unit,
        "blue",
        f"VM sizes of {t.tasks_last_24h:,} tasks (EM TotalSize), not bytes moved",
    )


# Headline figures, one row of four per side.
TILES: dict[str, list[Callable[[Summary], Tile]]] = {
    "backup": [backup_machines, backup_breaches, backup_success, repositories_low],
    "replication": [vms, breaches, success, source],
}
