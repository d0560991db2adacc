"""Java archives → Maven packages: pom.properties, manifests, nesting and zip bombs."""

from __future__ import annotations

import io
import random
import shutil
import subprocess
import tempfile
import tracemalloc
import zipfile
from pathlib import Path

import pytest

from regsweep.crawler.analyzers.interface import AnalyzerResult, Context, FileFacts, LayerFile
from regsweep.crawler.analyzers.java import (
    MAX_DIRECTORY,
    SIZE_CAP,
    JavaAnalyzer,
    _declared_entries,
)
from tests import hostile

LAYER = "sha256:" + "ab" * 32
#: A real Maven-built jar shipped by Debian (libcommons-cli-java, pulled in by maven).
COMMONS_CLI = Path("/usr/share/java/commons-cli-1.5.0.jar")


def _pom(group: str, artifact: str, version: str) -> bytes:
    # What maven-archiver writes: a comment header, then the three coordinates.
    return (
        "#Created by Apache Maven 3.8.7\n"
        f"groupId={group}\nartifactId={artifact}\nversion={version}\n"
    ).encode()


def _zip(members: dict[str, bytes], *, stored: bool = False) -> bytes:
    buf = io.BytesIO()
    method = zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED
    with zipfile.ZipFile(buf, "w", method) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def _jar(group: str, artifact: str, version: str) -> bytes:
    return _zip(
        {
            "META-INF/MANIFEST.MF": b"Manifest-Version: 1.0\r\n\r\n",
            f"META-INF/maven/{group}/{artifact}/pom.properties": _pom(group, artifact, version),
            f"META-INF/maven/{group}/{artifact}/pom.xml": b"<project/>",
            "org/example/A.class": b"\xca\xfe\xba\xbe" + b"\0" * 64,
        }
    )


def _run(files: dict[str, bytes], ctx: Context | None = None, **kw: int) -> AnalyzerResult:
    az = JavaAnalyzer(**kw)
    lf = {p: LayerFile(path=p, data=d, layer=LAYER) for p, d in files.items()}
    return az.analyze(lf, ctx or Context())


def test_wants_java_archive_suffixes_only() -> None:
    """Every Java archive suffix is wanted at the 256 MiB cap, case-insensitively; nothing else."""
    az = JavaAnalyzer()
    for p in ("app/x.jar", "srv/a.WAR", "b.ear", "var/jenkins/plugins/git.jpi", "p/x.hpi"):
        assert az.wants(p) == SIZE_CAP
    for p in ("usr/lib/x.jar.sha1", "x.zip", "jar", "usr/share/doc/jar/README"):
        assert az.wants(p) is None


@pytest.mark.skipif(not COMMONS_CLI.exists(), reason="libcommons-cli-java not installed")
def test_real_maven_jar_gives_group_artifact_version() -> None:
    """A jar built by Maven yields ``group:artifact``, version, Maven ecosystem and purl, and
    the owner from the OS package database."""
    path = "usr/share/java/commons-cli-1.5.0.jar"
    ctx = Context(owners={path: "libcommons-cli-java"})
    res = _run({path: COMMONS_CLI.read_bytes()}, ctx)
    assert res.notes == []
    [p] = res.packages
    assert (p.name, p.version, p.type, p.ecosystem) == (
        "commons-cli:commons-cli",
        "1.5.0",
        "maven",
        "Maven",
    )
    assert p.purl == "pkg:maven/commons-cli/commons-cli@1.5.0"
    assert (p.layer, p.path, p.owner) == (LAYER, path, "libcommons-cli-java")


def test_shaded_jar_reports_every_pom_properties() -> None:
    """A shaded jar carrying several pom.properties reports each library it inlined."""
    data = _zip(
        {
            "META-INF/maven/com.acme/app/pom.properties": _pom("com.acme", "app", "2.0"),
            "META-INF/maven/com.google.guava/guava/pom.properties": _pom(
                "com.google.guava", "guava", "31.1-jre"
            ),
        }
    )
    res = _run({"app/app.jar": data})
    assert {(p.name, p.version) for p in res.packages} == {
        ("com.acme:app", "2.0"),
        ("com.google.guava:guava", "31.1-jre"),
    }


def test_spring_boot_fat_jar_nested_libs_have_bang_paths() -> None:
    """BOOT-INF/lib jars (stored, as Spring Boot writes them) are opened and reported with a
    ``outer!/inner`` path; WEB-INF/lib in a WAR inside an EAR too (depth 2)."""
    inner = _jar("org.yaml", "snakeyaml", "1.33")
    fat = _zip(
        {
            "META-INF/maven/com.acme/svc/pom.properties": _pom("com.acme", "svc", "1.0.0"),
            "BOOT-INF/lib/snakeyaml-1.33.jar": inner,
        },
        stored=True,
    )
    war = _zip(
        {
            "WEB-INF/lib/log4j-core-2.14.1.jar": _jar(
                "org.apache.logging.log4j", "log4j-core", "2.14.1"
            )
        }
    )
    ear = _zip({"web.war": war})
    res = _run({"app/svc.jar": fat, "opt/app.ear": ear})
    got = {(p.name, p.version, p.path) for p in res.packages}
    assert got == {
        ("com.acme:svc", "1.0.0", "app/svc.jar"),
        ("org.yaml:snakeyaml", "1.33", "app/svc.jar!/BOOT-INF/lib/snakeyaml-1.33.jar"),
        (
            "org.apache.logging.log4j:log4j-core",
            "2.14.1",
            "opt/app.ear!/web.war!/WEB-INF/lib/log4j-core-2.14.1.jar",
        ),
    }
    assert all(p.layer == LAYER for p in res.packages)


@pytest.mark.skipif(shutil.which("jar") is None, reason="JDK jar tool not installed")
def test_manifest_only_jar_is_inventory_not_matched(tmp_path: Path) -> None:
    """Without pom.properties the manifest names the package (Bundle-SymbolicName before
    Implementation-Title, directives cut, 72-byte line continuations joined) with type
    ``jar`` and no ecosystem or purl, so it is never matched under a guessed coordinate."""
    long_name = "org.example.some.very.long.bundle.symbolic.name.that.wraps.past.seventy.two"
    (tmp_path / "m.txt").write_text(
        f"Bundle-SymbolicName: {long_name};singleton:=true\n"
        "Bundle-Version: 4.5.6.v20230101\n"
        "Implementation-Title: Some Library\n"
        "Implementation-Version: 4.5.6\n"
    )
    (tmp_path / "x.txt").write_text("x")
    subprocess.run(
        ["jar", "--create", "--file", "lib.jar", "--manifest", "m.txt", "x.txt"],
        cwd=tmp_path,
        check=True,
    )
    raw = (tmp_path / "lib.jar").read_bytes()
    assert b"\r\n " in zipfile.ZipFile(io.BytesIO(raw)).read("META-INF/MANIFEST.MF")
    [p] = _run({"lib/lib.jar": raw}).packages
    assert (p.name, p.version, p.type, p.ecosystem, p.purl) == (
        long_name,
        "4.5.6.v20230101",
        "jar",
        None,
        None,
    )
    # Implementation-* is the fallback when there is no OSGi header.
    impl = _zip(
        {
            "META-INF/MANIFEST.MF": b"Manifest-Version: 1.0\r\nImplementation-Title: t\r\n"
            b"Implementation-Version: 1.2\r\n\r\n"
        }
    )
    [q] = _run({"lib/impl.jar": impl}).packages
    assert (q.name, q.version, q.ecosystem) == ("t", "1.2", None)


def test_manifest_without_version_gives_nothing() -> None:
    """A manifest that names nothing with a version produces no package and no error."""
    res = _run({"a.jar": _zip({"META-INF/MANIFEST.MF": b"Manifest-Version: 1.0\r\n\r\n"})})
    assert res.packages == [] and res.notes == []


def test_corrupt_and_truncated_archives_are_notes() -> None:
    """Garbage, a cut-off zip and a too-large (truncated) file each give a note, no raise."""
    good = _jar("g", "a", "1")
    lf = {
        "garbage.jar": LayerFile(path="garbage.jar", data=b"\x00garbage" * 100, layer=LAYER),
        "cut.jar": LayerFile(path="cut.jar", data=good[: len(good) // 2], layer=LAYER),
        "big.jar": LayerFile(path="big.jar", data=good, layer=LAYER, truncated=True),
    }
    res = JavaAnalyzer().analyze(lf, Context())
    assert res.packages == []
    assert {n.split(":")[0] for n in res.notes} == {"garbage.jar", "cut.jar", "big.jar"}


def test_corrupt_member_data_is_a_note() -> None:
    """A member whose deflate stream is damaged (CRC or zlib error) is a note, not a crash."""
    data = bytearray(_jar("g", "a", "1"))
    marker = data.find(b"pom.properties") + len(b"pom.properties")
    for i in range(marker, marker + 20):  # the compressed bytes after the local header name
        data[i] ^= 0xFF
    res = _run({"a.jar": bytes(data)})
    assert res.packages == []
    assert res.notes and "a.jar!/META-INF/maven/g/a/pom.properties" in res.notes[0]


def test_zip_bomb_stops_at_inflate_budget() -> None:
    """A nested archive inflating past the per-archive budget stops reading with a note;
    packages found before the budget ran out are kept."""
    bomb = _zip({"BOOT-INF/lib/zeros.jar": b"\0" * (16 << 20)})
    outer = _zip(
        {
            "META-INF/maven/g/outer/pom.properties": _pom("g", "outer", "1"),
            "nested.jar": bomb,
        }
    )
    res = _run({"bomb.jar": outer}, max_inflate=4 << 20)
    assert [(p.name, p.version) for p in res.packages] == [("g:outer", "1")]
    assert any("decompresses past" in n for n in res.notes)


def test_nesting_depth_is_capped() -> None:
    """Archives nested past ``max_depth`` are not opened (a note says so)."""
    data = _jar("g", "deep", "1")
    for i in range(4):
        data = _zip({f"lib{i}.jar": data})
    res = _run({"nest.jar": data}, max_depth=2)
    assert res.packages == []
    assert any("nested deeper than 2" in n for n in res.notes)
    assert [p.name for p in _run({"nest.jar": data}, max_depth=4).packages] == ["g:deep"]


def test_member_count_is_capped() -> None:
    """A zip declaring more members than ``max_members`` is not listed at all (a note says
    so); one at the cap is read."""
    members = {f"f{i}": b"" for i in range(50)}
    members["META-INF/maven/g/a/pom.properties"] = _pom("g", "a", "1")
    res = _run({"many.jar": _zip(members)}, max_members=10)
    assert res.packages == []
    assert res.notes == ["many.jar: 51 members, over 10, not read"]
    assert len(_run({"many.jar": _zip(members)}, max_members=51).packages) == 1


def test_zip64_entry_count_is_read() -> None:
    """The zip64 end record's entry count is what the cap is checked against."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for i in range(70_000):  # past 0xFFFF: zipfile writes the zip64 records
            zf.writestr(f"{i}", b"")
    data = buf.getvalue()
    assert _declared_entries(data) == 70_000
    res = _run({"z64.jar": data}, max_members=65_536)
    assert res.notes == ["z64.jar: 70000 members, over 65536, not read"]


def test_incomplete_pom_properties_is_a_note() -> None:
    """pom.properties missing a coordinate is skipped with a note."""
    res = _run({"a.jar": _zip({"META-INF/maven/g/a/pom.properties": b"groupId=g\nartifactId=a\n"})})
    assert res.packages == [] and "missing" in res.notes[0]


# ----------------------------------------------------------------------------- hostile sizes


def _streamed(path: str, data: bytes, az: JavaAnalyzer | None = None) -> tuple[FileFacts, int]:
    """The facts of one archive fed in the walker's 1 MiB pieces, and the peak of Python
    memory the reader took meanwhile."""
    reader = (az or JavaAnalyzer()).open(path, len(data), SIZE_CAP)
    tracemalloc.start()
    try:
        for at in range(0, len(data), 1 << 20):
            if not reader.feed(data[at : at + (1 << 20)]):
                break
        facts = reader.close()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert facts is not None
    return facts, peak


def test_member_lying_about_its_size_is_inflated_a_piece_at_a_time() -> None:
    """A nested archive declaring 1 KiB that inflates to 64 MiB is cut at what it declared
    (its CRC then fails: a note), and never inflated further than one 1 MiB piece: a read
    of up to the 256 MiB cap at once inflated the whole 64 MiB in memory."""
    facts, peak = _streamed("app/app.jar", hostile.lying_jar(64 << 20, 1024))
    assert facts.packages == ()
    assert len(facts.notes) == 1 and "big.jar: unreadable (Bad CRC-32" in facts.notes[0]
    assert peak < 8 << 20, peak


def test_large_archives_are_spooled_not_held(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A 40 MiB Spring Boot style jar whose nested 40 MiB jar carries a pom.properties is
    read whole, both packages found, while the reader holds a few MiB: past 4 MiB an
    archive (top-level or nested) is kept in a temporary file, removed once read."""
    filler = random.Random(14).randbytes(40 << 20)
    inner = _zip(
        {"META-INF/maven/g/big/pom.properties": _pom("g", "big", "2"), "blob.bin": filler},
        stored=True,
    )
    outer = _zip(
        {
            "META-INF/maven/g/app/pom.properties": _pom("g", "app", "1"),
            "BOOT-INF/lib/big.jar": inner,
        },
        stored=True,
    )
    spool_dir = tmp_path / "tmp"
    spool_dir.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(spool_dir))
    facts, peak = _streamed("app/app.jar", outer)
    assert {(p.name, p.version, p.path) for p in facts.packages} == {
        ("g:app", "1", "app/app.jar"),
        ("g:big", "2", "app/app.jar!/BOOT-INF/lib/big.jar"),
    }
    assert facts.notes == ()
    assert peak < 12 << 20, peak
    assert list(spool_dir.iterdir()) == []


def test_members_compressed_but_by_deflate_are_not_read() -> None:
    """A bzip2 (or LZMA) member is noted, not read: zipfile inflates those without bounding
    a call's output, and no jar tool writes them."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_BZIP2) as zf:
        zf.writestr("META-INF/maven/g/a/pom.properties", _pom("g", "a", "1"))
    res = _run({"b.jar": buf.getvalue()})
    assert res.packages == []
    assert res.notes == [
        "b.jar!/META-INF/maven/g/a/pom.properties: compression method 12, not read"
    ]


def test_central_directory_past_its_cap_is_not_read() -> None:
    """An archive whose central directory is larger than ``MAX_DIRECTORY`` (zipfile reads
    it whole, and builds a ZipInfo per entry) is noted, not listed."""
    members = {f"{i:05d}" + "x" * 60_000: b"" for i in range(600)}
    members["META-INF/maven/g/a/pom.properties"] = _pom("g", "a", "1")
    data = _zip(members, stored=True)
    facts, peak = _streamed("huge.jar", data)
    assert facts.packages == ()
    (note,) = facts.notes
    assert note.startswith("huge.jar: central directory of ") and f"over {MAX_DIRECTORY}" in note
    assert peak < 8 << 20, peak
