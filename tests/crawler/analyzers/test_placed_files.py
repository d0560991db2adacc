"""``placed_files``: the assembly loop shared by the analyzers whose files stand alone."""

from __future__ import annotations

from regsweep.crawler.analyzers._pkgutil import Notes
from regsweep.crawler.analyzers.interface import Context, FileFacts, Found, placed_files
from regsweep.matcher.records import Package


def _found(path: str, layer: str, *inner: str, notes: tuple[str, ...] = ()) -> Found:
    packages = tuple(
        Package(name=p.rpartition("/")[2], version="1", type="t", path=p) for p in (path, *inner)
    )
    facts = FileFacts(packages=packages, notes=notes)
    return Found(analyzer="a", path=path, layer=layer, size=1, facts=facts)


def test_files_in_path_order_with_their_layer_notes_and_owner() -> None:
    found = {
        "b/pkg/f": _found("b/pkg/f", "L2", notes=("b note",)),
        "a/f": _found("a/f", "L1", "a/f!/inner"),
        "c/f": Found(analyzer="a", path="c/f", layer="L3", size=1, facts=FileFacts(notes=("c",))),
        "d/pkg/f": _found("d/pkg/f", "L4"),
    }
    owners = {"a/f": "by-path", "b/pkg": "by-dir", "d/pkg/f": "file", "d/pkg": "dir"}
    notes = Notes()
    out = placed_files(found, Context(owners=owners), notes, lambda p: p.rpartition("/")[0])
    assert [(p.path, p.layer, p.owner) for p in out] == [
        ("a/f", "L1", "by-path"),
        ("a/f!/inner", "L1", "by-path"),  # a place inside the file keeps its path
        ("b/pkg/f", "L2", "by-dir"),
        ("d/pkg/f", "L4", "file"),  # the file's own owner wins over its directory's
    ]
    assert notes.result() == ["b note", "c"]


def test_without_owner_dir_only_the_path_is_looked_up() -> None:
    found = {"x/f": _found("x/f", "L")}
    out = placed_files(found, Context(owners={"x": "dir"}), Notes())
    assert [p.owner for p in out] == [None]


def test_notes_follow_the_cap_they_are_given() -> None:
    found = {f"f{i}": _found(f"f{i}", "L", notes=(f"n{i}",)) for i in range(5)}
    capped, kept = Notes(2), Notes(None)
    placed_files(found, Context(), capped)
    placed_files(found, Context(), kept)
    assert capped.result() == ["n0", "n1", "3 more notes left out"]
    assert kept.result() == [f"n{i}" for i in range(5)]
