"""The NDJSON fast path: a line is skipped only when msgspec would read it as a valid
``package`` record of a known identity with no finding."""

from __future__ import annotations

import msgspec
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from regsweep.matcher import _identity
from regsweep.matcher.identity import LineScanner
from regsweep.matcher.match import IDENTITY_FIELDS, IDENTITY_FOLD, _line_scanner
from regsweep.matcher.records import ImageRef, Package, PackageRecord, Record

# REGSWEEP_PURE_PYTHON=1 has no fast path: every line is decoded (tested elsewhere).
pytestmark = pytest.mark.skipif(LineScanner is None, reason="the fast path is compiled only")
DECODER = msgspec.json.Decoder(Record)


def _setup(*known: Package) -> tuple[_identity.LineScanner, _identity.IdentityTable]:
    table = _identity.IdentityTable(Package, IDENTITY_FIELDS, IDENTITY_FOLD)
    table.assign(list(known))
    scanner = _line_scanner(table)
    assert scanner is not None
    return scanner, table


OPENSSL = Package(
    name="openssl", version="1.1.1n-0+deb11u3", type="deb", ecosystem="Debian:11",
    source_name="openssl", layer="sha256:" + "a" * 64, path="var/lib/dpkg/status",
)  # fmt: skip
LINE = msgspec.json.encode(
    PackageRecord(image=ImageRef(ref="reg/x:1", digest="sha256:" + "b" * 64), package=OPENSSL)
)


def test_a_known_identity_with_no_finding_is_clean_and_nothing_else() -> None:
    scanner, _ = _setup(OPENSSL)
    assert scanner.clean(LINE, [()])
    assert scanner.clean(b"  " + LINE + b"\r\n", [()])
    assert not scanner.clean(LINE, [("an advisory",)])  # findings: decode it
    assert not scanner.clean(LINE, [])  # no result yet
    other, _ = _setup(Package(name="zlib", version="1", type="deb"))
    assert not other.clean(LINE, [()])  # an identity the table does not know
    # Fields outside the identity (layer, path, purl, the image) do not matter.
    assert scanner.clean(LINE.replace(b"var/lib/dpkg/status", b"other"), [()])
    # Nor does the binary name of a package with a source name: another binary of the
    # same source build is the same identity.
    assert b'"name":"openssl"' in LINE
    assert scanner.clean(LINE.replace(b'"name":"openssl"', b'"name":"libssl1.1"'), [()])
    assert not scanner.clean(LINE.replace(b'"source_name":"openssl"', b'"source_name":"x"'), [()])


@pytest.mark.parametrize("n", [253, 254, 255, 4000])
def test_long_fields_are_read_as_the_table_keys_them(n: int) -> None:
    # Past 253 characters a field's key takes a longer length header; both sides agree.
    pkg = msgspec.structs.replace(OPENSSL, name="x" * n, version="1" * (n + 1), source_name=None)
    scanner, _ = _setup(pkg)
    line = msgspec.json.encode(PackageRecord(package=pkg))
    assert scanner.clean(line, [()])
    shorter = msgspec.json.encode(PackageRecord(package=msgspec.structs.replace(pkg, name="x")))
    assert not scanner.clean(shorter, [()])


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (b'"openssl"', b'"open\\u0073sl"'),  # an escape (msgspec would read it fine)
        (b'"openssl"', '"opensslé"'.encode()),  # non-ASCII
        (b'"name":"openssl"', b'"name":null'),  # a required field null
        (b'"name":"openssl",', b""),  # a required field missing
        (b'"kind":"package"', b'"kind":"image"'),  # another record kind
        (b'"kind":"package",', b""),  # no tag
        (b'"schema_version":1', b'"schema_version":1.0'),  # not an int
        (b'"schema_version":1', b'"schema_version":01'),  # not JSON
        (b'"schema_version":1', b'"schema_version":-1'),  # valid, but not read here
        (b'"ref":"reg/x:1"', b'"ref":null'),  # the image's required field
        (b'"package":{', b'"package":{"extra":1,'),  # an unknown key
        (b'"package":{', b'"package":{"name":"x",'),  # a repeated key
        (b'"schema_version":1,', b'"schema_version":1,"x":2,'),  # an unknown top-level key
        (b'"image":{', b'"image":{"tag":7,'),  # a field of the wrong type
        (b"}}", b"},}"),  # a trailing comma
        (b"}}", b"}}x"),  # trailing bytes
        (b"}}", b"}"),  # truncated
    ],
)
def test_anything_unusual_goes_to_msgspec(old: bytes, new: bytes) -> None:
    scanner, _ = _setup(OPENSSL)
    assert old in LINE
    assert not scanner.clean(LINE.replace(old, new, 1), [()])


@pytest.mark.parametrize("field", ["purl", "modularity_label"])  # mid-line, at its end
@pytest.mark.parametrize("bad", ["\x7f", "\x80", "é", "\x1f", "\\", '"'])
def test_every_byte_of_a_string_is_checked(field: str, bad: str) -> None:
    # Strings are checked 16 bytes at a time, and the last few bytes of a line one at a
    # time: a bad byte (raw, or escaped by msgspec) at every place, in strings of every
    # length up to a few blocks.
    scanner, _ = _setup(OPENSSL)
    for size in range(40):
        plain = msgspec.structs.replace(OPENSSL, **{field: "p" * size})
        line = msgspec.json.encode(PackageRecord(package=plain))
        assert scanner.clean(line, [()]), size
        for at in range(size + 1):
            pkg = msgspec.structs.replace(OPENSSL, **{field: "p" * at + bad + "p" * (size - at)})
            line = msgspec.json.encode(PackageRecord(package=pkg))
            assert not scanner.clean(line, [()]), (size, at)


_text = st.text(
    alphabet=st.characters(min_codepoint=0, max_codepoint=0x2FF) | st.sampled_from('"\\\t'),
    max_size=6,
)
_package = st.builds(
    Package,
    name=_text,
    version=_text,
    type=st.sampled_from(["deb", "apk", "npm"]) | _text,
    ecosystem=st.none() | st.sampled_from(["Debian:11", "npm"]) | _text,
    source_name=st.none() | _text,
    source_version=st.none() | _text,
    owner=st.none() | _text,
    purl=st.none() | _text,
)
_mutation = st.lists(st.tuples(st.integers(0, 10_000), st.binary(max_size=3)), max_size=3)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_package, min_size=1, max_size=4), st.integers(0, 3), _mutation)
@example([OPENSSL], 0, [])
def test_clean_lines_are_exactly_what_msgspec_reads_as_known_and_empty(
    known: list[Package], pick: int, mutations: list[tuple[int, bytes]]
) -> None:
    """Safety: a line the scanner calls clean decodes (with msgspec) to a package record
    whose package has a known identity with an empty result. Liveness: an unmutated line
    of plain ASCII is clean."""
    scanner, table = _setup(*known)
    results: list[tuple[object, ...]] = [()] * len(table)
    target = known[pick % len(known)]
    line = bytearray(msgspec.json.encode(PackageRecord(image=ImageRef(ref="r"), package=target)))
    for at, data in mutations:
        at %= len(line) + 1
        line[at : at + len(data)] = data
    clean = scanner.clean(bytes(line), results)
    if clean:
        rec = DECODER.decode(bytes(line))  # raises if the scanner accepted a bad line
        assert isinstance(rec, PackageRecord)
        assert table.assign([rec.package]) == []  # a known identity
        out, errors = table.fan_out(results, type(None), lambda i, f: (i, f))
        assert out == [()] and errors == []
    if not mutations:
        # Plain strings, null, or ``false`` in a boolean field (``root``) read as absent.
        plain = all(
            v is None
            or v is False
            or (
                isinstance(v, str)
                and v.isascii()
                and v.isprintable()
                and '"' not in v
                and "\\" not in v
            )
            for v in (getattr(target, f) for f in Package.__struct_fields__)
        )
        assert clean == plain


def test_a_root_package_line_is_decoded_and_a_false_root_is_clean() -> None:
    """``root`` (a boolean outside the identity): ``false`` reads as absent, so a known
    package's line stays on the fast path; ``true`` is decoded (a project's root)."""
    pkg = Package(name="web", version="1.0.0", type="npm", ecosystem="npm")
    table = _identity.IdentityTable(Package, IDENTITY_FIELDS, IDENTITY_FOLD)
    assert table.assign([pkg]) == [0]
    scanner = _line_scanner(table)
    assert scanner is not None
    line = msgspec.json.encode(PackageRecord(package=pkg))
    assert b'"root":false' in line and scanner.clean(line, [()])
    assert not scanner.clean(line.replace(b'"root":false', b'"root":true'), [()])
