"""Package identities to slot numbers: the per-package half of the matcher.

A fleet repeats the same packages millions of times. ``IdentityTable.assign`` gives every
package of a batch the slot of its identity (the fields matching reads), numbering
identities it has not seen before from ``len(table)`` on, and returns the index of the first
package of each new one; the matcher resolves only those, appends their results, and
``fan_out`` hands every package its slot's result. The compiled table (``_identity.pyx``)
does this without a Python object per package; ``PureIdentityTable`` here is the reference
with the same behaviour (``REGSWEEP_PURE_PYTHON=1`` selects it: the one switch, in
``regsweep.matcher._pure``, that also selects the pure version schemes and table queries).
The reference compares the fields themselves; the compiled table compares a 96-bit keyed
hash of them, which tells two identities apart except with a chance of about 2**-61 per
table (see ``_identity.pyx``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from regsweep.matcher._pure import PURE_PYTHON

__all__ = ["Fold", "IdentityTable", "LineScanner", "PureIdentityTable", "Table"]

#: ``(field, values, ((dropped, decider), ...))``: when a package's ``field`` is one of
#: ``values``, each ``dropped`` field does not count (it is not read, and is taken as None)
#: if its ``decider`` field is a non-empty str. See ``_identity.IdentityTable``.
Fold = tuple[str, tuple[str, ...], tuple[tuple[str, str], ...]]


class Table(Protocol):
    """What the matcher needs of an identity table."""

    def __len__(self) -> int: ...

    def clear(self) -> None:
        """Forget every identity (slots restart at 0)."""

    def assign(self, packages: list[Any]) -> list[int]:
        """Slot every package; return the index of the first package of each new identity."""

    def fan_out(
        self,
        results: list[Any],
        failure_type: type,
        error_factory: Callable[[int, Any], Any],
    ) -> tuple[list[tuple[Any, ...]], list[Any]]:
        """Per package of the last ``assign``: ``results[slot]`` (see the module docs)."""


class PureIdentityTable:
    """The reference identity table: a dict from field tuples to slots."""

    def __init__(self, ptype: type, names: tuple[str, ...], fold: Fold | None = None) -> None:
        self.ptype = ptype
        self.names = names
        self._slots: dict[tuple[Any, ...], int] = {}
        self._last: list[int] = []
        self._fold: tuple[int, tuple[str, ...], list[tuple[int, int]]] | None = None
        if fold is not None:
            field, values, pairs = fold
            self._fold = (
                names.index(field),
                values,
                [(names.index(d), names.index(c)) for d, c in pairs],
            )

    def __len__(self) -> int:
        return len(self._slots)

    def clear(self) -> None:
        """Forget every identity (slots restart at 0)."""
        self._slots.clear()

    def assign(self, packages: list[Any]) -> list[int]:
        """Slot every package; return the index of the first package of each new identity."""
        fresh: list[int] = []
        last: list[int] = []
        slots = self._slots
        for i, p in enumerate(packages):
            if type(p) is not self.ptype:
                raise TypeError(f"expected {self.ptype.__name__}, got {type(p).__name__}")
            ident = tuple(getattr(p, n) for n in self.names)
            if self._fold is not None:
                ident = self._folded(ident, *self._fold)
            for n, v in zip(self.names, ident, strict=True):
                if v is not None and type(v) is not str:
                    raise TypeError(f"{n} is {type(v).__name__}, not str")
            slot = slots.get(ident)
            if slot is None:
                slot = slots[ident] = len(slots)
                fresh.append(i)
            last.append(slot)
        self._last = last
        return fresh

    @staticmethod
    def _folded(
        ident: tuple[Any, ...], k: int, values: tuple[str, ...], pairs: list[tuple[int, int]]
    ) -> tuple[Any, ...]:
        # ``ident`` with the fields ``fold`` drops for it set to None.
        if type(ident[k]) is not str or ident[k] not in values:
            return ident
        out = list(ident)
        for dropped, decider in pairs:
            if type(ident[decider]) is str and ident[decider]:
                out[dropped] = None
        return tuple(out)

    def fan_out(
        self,
        results: list[Any],
        failure_type: type,
        error_factory: Callable[[int, Any], Any],
    ) -> tuple[list[tuple[Any, ...]], list[Any]]:
        """Per package of the last ``assign``: ``results[slot]``; failures become errors."""
        out: list[tuple[Any, ...]] = []
        errors = []
        for i, slot in enumerate(self._last):
            if slot >= len(results):
                raise IndexError("a slot without a result: fan_out before its results")
            r = results[slot]
            if type(r) is tuple:
                out.append(r)
            elif type(r) is failure_type:
                out.append(())
                errors.append(error_factory(i, r))
            else:
                raise TypeError(f"result {type(r).__name__} is neither tuple nor failure")
        return out, errors


IdentityTable: Callable[[type, tuple[str, ...], Fold | None], Table]
#: The compiled table's NDJSON fast path (``_identity.LineScanner``); None without it.
LineScanner: Any
if PURE_PYTHON:
    IdentityTable = PureIdentityTable
    LineScanner = None
else:
    from regsweep.matcher import _identity

    IdentityTable = _identity.IdentityTable
    LineScanner = _identity.LineScanner
