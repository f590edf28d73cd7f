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


AUTO_WIDTH_GUESS = 20  # a fit-content column, when deciding what fits
CELL_PADDING = 2  # a DataTable cell's padding, both sides


def columns_that_fit(columns: Sequence[Column], chosen: Sequence[str], width: int, drop_order: Sequence[str],
                     keep: Collection[str] = ()) -> tuple[str, ...]:
    """Of `chosen`, the columns a pane `width` cells wide shows whole: `drop_order`'s given up first,
    in its order, then the others from the right; `keep` never. width 0: not laid out, all of them."""
    widths = {key: (AUTO_WIDTH_GUESS if size is None else size) + CELL_PADDING for key, _, size in columns}
    shown = [key for key, _, _ in columns if key in chosen]
    if width <= 0:
        return tuple(shown)
    order = [key for key in drop_order if key in shown] + [key for key in reversed(shown) if key not in drop_order]
    for key in order:
        if sum(widths[name] for name in shown) <= width:
            break
        if key not in keep and len(shown) > 1:
            shown.remove(key)
    return tuple(shown)
