"""What every view shares: the row keys, the column definitions, cutting a row to the columns shown."""

from __future__ import annotations

from collections.abc import Collection, Sequence

from virttui.widgets.cells import Cell

Column = tuple[str, str, int | None]  # key, label, width (None: fit content)

ALL_HOSTS_KEY = "*all*"
KEY_SEP = "\n"  # URIs and UUIDs never contain a newline
GROUP_PREFIX = f"group{KEY_SEP}"  # Hosts row key of a host group: never a URI (no newline in those)


def domain_key(uri: str, uuid: str) -> str:
    return f"{uri}{KEY_SEP}{uuid}"


def group_key(name: str) -> str:
    return GROUP_PREFIX + name


def group_of_key(key: str | None) -> str | None:
    """The group a Hosts row key names, or None when it is a host or "all"."""
    return key[len(GROUP_PREFIX):] if key is not None and key.startswith(GROUP_PREFIX) else None


def split_domain_key(key: str) -> tuple[str, str]:
    uri, _, uuid = key.rpartition(KEY_SEP)
    return uri, uuid


def projection(columns: Sequence[Column], shown: Collection[str]) -> tuple[int, ...] | None:
    """Indexes into `columns` of the ones shown, in `columns` order; None: all of them (rows are
    built with every column, then cut to these, as DiffTable.show_columns lays the table out)."""
    wanted = tuple(index for index, (key, _, _) in enumerate(columns) if key in shown)
    return None if len(wanted) == len(columns) else wanted


def cut(cells: Sequence[Cell], indexes: tuple[int, ...] | None) -> Sequence[Cell]:
    """A full row's cells cut to the columns shown (the same object when all are)."""
    return cells if indexes is None else tuple(cells[index] for index in indexes)
