from collections.abc import Callable
from typing import Any

from regsweep.matcher.identity import Fold

class IdentityTable:
    def __init__(self, ptype: type, names: tuple[str, ...], fold: Fold | None = None) -> None: ...
    def __len__(self) -> int: ...
    def clear(self) -> None: ...
    def assign(self, packages: list[Any]) -> list[int]: ...
    def fan_out(
        self,
        results: list[Any],
        failure_type: type,
        error_factory: Callable[[int, Any], Any],
    ) -> tuple[list[tuple[Any, ...]], list[Any]]: ...
    def read_floor(self, packages: list[Any]) -> int: ...

class LineScanner:
    def __init__(
        self,
        table: IdentityTable,
        package_fields: tuple[str, ...],
        required: tuple[str, ...],
        image_fields: tuple[str, ...],
        image_required: tuple[str, ...],
        false_fields: tuple[str, ...] = (),
    ) -> None: ...
    def clean(self, line: bytes, results: list[Any]) -> bool: ...
