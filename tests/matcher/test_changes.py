"""``matcher.changes``: a judgement against the findings reported before → new findings,
``resolved`` records with the right reason, and what to store; failures resolve nothing."""

from __future__ import annotations

from datetime import UTC, datetime

import msgspec

from regsweep.matcher.changes import ImageFindings, changes, fingerprint, group_by_image, image_key
from regsweep.matcher.records import (
    Advisory,
    ErrorRecord,
    ImageRecord,
    ImageRef,
    Package,
    Record,
    ResolveReason,
    Suppression,
    VulnerabilityRecord,
)

AT = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
OLD = ImageRef(
    ref="reg.example/app:1", tag="1", digest="sha256:" + "a" * 64, platform="linux/amd64"
)
NEW = msgspec.structs.replace(OLD, digest="sha256:" + "b" * 64)
ZLIB = Package(name="zlib1g", version="1.2", type="deb", ecosystem="Debian:12", layer="sha256:1")
SSL = Package(name="libssl3", version="3.0.1", type="deb", ecosystem="Debian:12", layer="sha256:1")


def vuln(image: ImageRef, pkg: Package, adv: str, **kw: object) -> VulnerabilityRecord:
    return VulnerabilityRecord(image=image, package=pkg, advisory=Advisory(id=adv), **kw)  # type: ignore[arg-type]


def judged(image: ImageRef, *records: Record) -> list[Record]:
    """One image's group as the judge writes it: its records, the image record last."""
    return [*records, ImageRecord(image=image, scanned_at=AT)]


def stored(image: ImageRef, *records: Record) -> ImageFindings:
    current = changes(None, judged(image, *records), known=lambda _: True, at=AT).current
    assert current is not None
    return current


def everything(_: str) -> bool:
    return True


def test_new_findings_and_the_reasons_of_those_that_no_longer_hold() -> None:
    """Same digest: a finding gone whose advisory the index still has is ``fixed_in_index``,
    one whose advisory it lost is ``withdrawn``; a finding not stored before is new; the
    stored form then equals the new judgement's."""
    before = stored(OLD, vuln(OLD, ZLIB, "DSA-1"), vuln(OLD, ZLIB, "DSA-2"), vuln(OLD, SSL, "X"))
    group = judged(OLD, vuln(OLD, SSL, "X"), vuln(OLD, SSL, "DSA-3"))
    out = changes(before, group, known=lambda a: a != "DSA-2", at=AT)
    assert [(r.package.name, r.advisory.id) for r in out.new] == [("libssl3", "DSA-3")]
    assert {(r.advisory.id, r.reason) for r in out.resolved} == {
        ("DSA-1", ResolveReason.FIXED_IN_INDEX),
        ("DSA-2", ResolveReason.WITHDRAWN),
    }
    assert all(r.image == OLD and r.package == ZLIB and r.resolved_at == AT for r in out.resolved)
    assert out.current == stored(OLD, vuln(OLD, SSL, "X"), vuln(OLD, SSL, "DSA-3"))
    # Judged again the same: nothing new, nothing resolved, nothing to store.
    again = changes(out.current, group, known=everything, at=AT)
    assert (again.new, again.resolved, again.current) == ([], [], None)


def test_a_tag_moved_to_a_new_digest_resolves_a_package_that_left_as_package_gone() -> None:
    """A new digest for the image key: the finding of a package no longer in the image is
    ``package_gone`` (with the old image, as the retired record had it), one whose package
    stayed but no longer matches is ``fixed_in_index``; a rebuild that only moved a
    package to another layer is the same finding, not a new one."""
    before = stored(OLD, vuln(OLD, ZLIB, "DSA-1"), vuln(OLD, SSL, "DSA-2"), vuln(OLD, SSL, "X"))
    rebuilt_ssl = msgspec.structs.replace(SSL, layer="sha256:2")
    group = judged(NEW, vuln(NEW, rebuilt_ssl, "X"))
    out = changes(before, group, known=everything, at=AT, packages=[rebuilt_ssl])
    assert out.new == []
    assert {(r.package.name, r.advisory.id, r.reason) for r in out.resolved} == {
        ("zlib1g", "DSA-1", ResolveReason.PACKAGE_GONE),
        ("libssl3", "DSA-2", ResolveReason.FIXED_IN_INDEX),
    }
    assert {r.image.digest for r in out.resolved} == {OLD.digest}
    assert out.current is not None and out.current.digest == NEW.digest
    # Without the image's packages, the records' packages say which are present.
    bare = changes(before, group, known=everything, at=AT)
    assert {(r.advisory.id, r.reason) for r in bare.resolved} == {
        ("DSA-1", ResolveReason.PACKAGE_GONE),
        ("DSA-2", ResolveReason.FIXED_IN_INDEX),
    }


def test_an_image_that_failed_never_resolves_its_findings() -> None:
    """No image record (unreadable, or the judge failed): nothing new, nothing resolved,
    nothing stored. A package that could not be matched: new findings are reported, none
    resolved, and the missing ones stay stored; after a digest change any error does so."""
    before = stored(OLD, vuln(OLD, ZLIB, "DSA-1"), vuln(OLD, SSL, "DSA-2"))
    failed = [ErrorRecord(image=OLD, ref=OLD.ref, stage="layer", error="x", message="m")]
    assert changes(before, failed, known=everything, at=AT) == changes(
        None, [], known=everything, at=AT
    )
    assert changes(before, failed, known=everything, at=AT).current is None
    unmatched = ErrorRecord(image=OLD, ref=OLD.ref, stage="match", error="bad", message="m")
    out = changes(before, judged(OLD, unmatched, vuln(OLD, SSL, "DSA-3")), known=everything, at=AT)
    assert [r.advisory.id for r in out.new] == ["DSA-3"] and out.resolved == []
    assert out.current is not None
    assert {a.id for _, a in out.current.records()} == {"DSA-1", "DSA-2", "DSA-3"}
    note = ErrorRecord(image=NEW, ref=NEW.ref, stage="analyzer", error="x", message="m")
    moved = changes(before, judged(NEW, note), known=everything, at=AT, packages=[])
    assert moved.resolved == []
    # The same note with the same digest (it was there when the findings were stored).
    same = changes(before, judged(OLD, msgspec.structs.replace(note, image=OLD)),
                   known=lambda _: False, at=AT)  # fmt: skip
    assert {r.reason for r in same.resolved} == {ResolveReason.WITHDRAWN}


def test_suppressed_records_are_not_findings() -> None:
    """A record set aside (``--show-suppressed``) is neither new nor stored, and a finding
    that becomes suppressed is resolved."""
    why = Suppression(kind="vex")
    out = changes(
        None, judged(OLD, vuln(OLD, ZLIB, "DSA-1", suppressed=why)), known=everything, at=AT
    )
    assert (out.new, out.current) == ([], None)
    before = stored(OLD, vuln(OLD, ZLIB, "DSA-1"))
    later = changes(
        before, judged(OLD, vuln(OLD, ZLIB, "DSA-1", suppressed=why)), known=everything, at=AT
    )
    assert [r.reason for r in later.resolved] == [ResolveReason.FIXED_IN_INDEX]


def test_group_by_image_splits_a_tags_records_per_platform() -> None:
    """A tag of an index: one group per platform image, in order; a record about no image
    (the tag itself could not be read) is in none."""
    arm = msgspec.structs.replace(OLD, platform="linux/arm64", digest="sha256:" + "c" * 64)
    tag_error = ErrorRecord(ref=OLD.ref, stage="manifest", error="x", message="m")
    a, b = vuln(OLD, ZLIB, "DSA-1"), vuln(arm, ZLIB, "DSA-1")
    groups = group_by_image([tag_error, a, *judged(arm, b), ImageRecord(image=OLD)])
    assert list(groups) == [image_key(OLD), image_key(arm)]
    assert groups[image_key(OLD)][0] is a and len(groups[image_key(arm)]) == 2
    assert image_key(OLD) != image_key(arm)
    # The stored form round-trips through msgpack (the state store's encoding).
    f = stored(OLD, a, vuln(OLD, ZLIB, "DSA-2"))
    assert len(f.packages) == 1
    assert msgspec.msgpack.decode(msgspec.msgpack.encode(f), type=ImageFindings) == f


def test_the_fingerprint_tells_unchanged_findings_apart_without_decoding_them() -> None:
    """``fingerprint(records)`` equals the stored ``ImageFindings.fingerprint`` exactly when
    the digest and the findings are those stored (a layer moved by a rebuild is not a
    change of finding, a new digest is); None for an image not judged."""
    group = judged(OLD, vuln(OLD, ZLIB, "DSA-1"), vuln(OLD, SSL, "X"))
    f = stored(OLD, *group[:-1])
    assert fingerprint(group) == f.fingerprint
    relayered = msgspec.structs.replace(ZLIB, layer="sha256:9")
    assert (
        fingerprint(judged(OLD, vuln(OLD, relayered, "DSA-1"), vuln(OLD, SSL, "X")))
        == f.fingerprint
    )
    assert fingerprint(judged(OLD, vuln(OLD, ZLIB, "DSA-1"))) != f.fingerprint
    assert fingerprint(judged(NEW, vuln(NEW, ZLIB, "DSA-1"), vuln(NEW, SSL, "X"))) != f.fingerprint
    assert fingerprint([vuln(OLD, ZLIB, "DSA-1")]) is None
