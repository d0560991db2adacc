"""Findings over time: what an image's judgement changes against what was reported before.

A run that reports findings (``crawl``, ``rematch``) stores, per image key (the image's
``ref`` and platform: a tag of an index has one image per platform), the findings it
reported: ``ImageFindings``, kept by the crawler's state store. ``changes`` compares an
image's new judgement with them: the ``vulnerability`` records that are new, a
``resolved`` record (``records.ResolvedRecord``) for each finding that no longer holds,
and the ``ImageFindings`` to store instead. That is what ``rematch --changes`` writes, and
what the service writes when the advisory index changes.

Which findings are "the same": the package without the layer it came from (a rebuild of
the same packages puts them in new layers) and the advisory id. A finding is the
unsuppressed ``vulnerability`` record only: one set aside (``suppressed``) was never
reported as a finding.

Failures never resolve findings: an image whose judgement has no ``image`` record could
not be read or judged, and keeps its stored findings as they were (nothing new, nothing
resolved); one with ``error`` records that may hide findings (a package that could not be
matched; after a digest change, any error, since the new image's unread parts could hold
the package) adds its new findings and resolves none. Pure functions of their arguments:
the caller reads and writes the store.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime

import msgspec

from regsweep.matcher.records import (
    Advisory,
    ErrorRecord,
    ImageRecord,
    ImageRef,
    Package,
    PackageRecord,
    Record,
    ResolvedRecord,
    ResolveReason,
    VulnerabilityRecord,
)

#: Error stages after which an image's findings may be incomplete even though its
#: contents are the same as when they were stored (its packages came from the same stored
#: facts): matching failed for a package, or the judge itself failed.
_HIDING_STAGES = frozenset({"match"})


class Finding(msgspec.Struct, frozen=True, array_like=True, gc=False):
    """One stored finding: the package (index into ``ImageFindings.packages``) and the
    advisory as the ``vulnerability`` record showed them."""

    package: int
    advisory: Advisory


class ImageFindings(msgspec.Struct, frozen=True, kw_only=True, array_like=True, gc=False):
    """The findings last reported for one image key, enough to write a ``resolved`` record
    for each later: stored by the state store (``array_like``: compact), a package once
    however many advisories hit it."""

    #: ``fingerprint`` of the findings: first, so a reader can compare it without decoding
    #: the rest (a warm crawl of an unchanged image reads only this).
    fingerprint: str
    #: The image as the records named it (its ``digest`` that of the image judged).
    image: ImageRef
    packages: tuple[Package, ...] = ()
    findings: tuple[Finding, ...] = ()

    @property
    def digest(self) -> str | None:
        """The digest of the platform image these findings are about."""
        return self.image.digest

    def records(self) -> Iterable[tuple[Package, Advisory]]:
        """Each finding's package and advisory, in the order they were reported."""
        packages = self.packages
        for f in self.findings:
            yield packages[f.package], f.advisory


class Changes(msgspec.Struct, frozen=True, kw_only=True):
    """What one image's judgement changed (``changes``)."""

    #: The ``vulnerability`` records not reported before, in judgement order.
    new: list[VulnerabilityRecord] = []
    #: A record for each finding reported before that no longer holds.
    resolved: list[ResolvedRecord] = []
    #: The findings to store for the image key; None: leave what is stored as it is (the
    #: image could not be judged, or it is unchanged).
    current: ImageFindings | None = None


def image_key(image: ImageRef) -> str:
    """The key findings are stored under: the image's ``ref`` and platform."""
    return f"{image.ref}\x00{image.platform or ''}"


def group_by_image(records: Iterable[Record]) -> dict[str, list[Record]]:
    """A judgement's records (one tag's, say) per image key, in order; records about no
    image in particular (a tag that could not be read at all) are left out, so a failed
    tag has no group and its images' findings stay as they were."""
    groups: dict[str, list[Record]] = {}
    for r in records:
        image = getattr(r, "image", None)
        if image is None:
            continue
        key = image_key(image)
        group = groups.get(key)
        if group is None:
            group = groups[key] = []
        group.append(r)
    return groups


def _package_id(p: Package) -> tuple[object, ...]:
    # Everything but the layer: a rebuilt image carries the same packages in new layers.
    return (p.type, p.ecosystem, p.name, p.version, p.source_name, p.source_version, p.path,
            p.owner, p.modularity_label)  # fmt: skip


def _finding_id(p: Package, advisory_id: str) -> tuple[object, ...]:
    return (*_package_id(p), advisory_id)


_ENC = msgspec.msgpack.Encoder()


def _fingerprint(digest: str | None, ids: Iterable[tuple[object, ...]]) -> str:
    return hashlib.blake2b(_ENC.encode([digest, *ids]), digest_size=16).hexdigest()


def fingerprint(records: Sequence[Record]) -> str | None:
    """What ``ImageFindings.fingerprint`` would be for one image's records (a
    ``group_by_image`` group): equal to the stored one exactly when the image's digest and
    its findings (in order) are those stored, so the caller can skip ``changes``; None when
    the records hold no ``image`` record (not judged)."""
    image = next((r.image for r in reversed(records) if isinstance(r, ImageRecord)), None)
    if image is None:
        return None
    return _fingerprint(
        image.digest,
        (
            _finding_id(r.package, r.advisory.id)
            for r in records
            if isinstance(r, VulnerabilityRecord) and r.suppressed is None
        ),
    )


def _build(image: ImageRef, items: Sequence[tuple[Package, Advisory]]) -> ImageFindings:
    packages: dict[tuple[object, ...], int] = {}
    pkgs: list[Package] = []
    findings: list[Finding] = []
    for pkg, adv in items:
        pid = _package_id(pkg)
        i = packages.get(pid)
        if i is None:
            i = packages[pid] = len(pkgs)
            pkgs.append(pkg)
        findings.append(Finding(i, adv))
    return ImageFindings(
        fingerprint=_fingerprint(image.digest, (_finding_id(p, a.id) for p, a in items)),
        image=image,
        packages=tuple(pkgs),
        findings=tuple(findings),
    )


def changes(
    previous: ImageFindings | None,
    records: Sequence[Record],
    *,
    known: Callable[[str], bool],
    at: datetime,
    packages: Iterable[Package] | None = None,
) -> Changes:
    """Compare one image's records (a ``group_by_image`` group) with the findings stored
    for its key.

    A stored finding that no longer holds is resolved as ``package_gone`` when the image
    has a new digest and the package (at that version) is not in it, else ``withdrawn``
    when ``known(advisory_id)`` says the index no longer has the advisory, else
    ``fixed_in_index``. ``at`` (UTC) is every ``resolved_at``. ``packages`` are the
    image's packages (``ImageFacts.packages``), which say whether a package left it; without
    them, the ``package`` and ``vulnerability`` records do (complete only with
    ``Policy.packages``). See the module doc for failures, which never resolve anything.
    """
    image_record = next((r for r in records if isinstance(r, ImageRecord)), None)
    if image_record is None:
        # Not read or not judged: what it holds is unknown, so nothing is resolved, and the
        # stored findings stay for the next judgement that succeeds.
        return Changes()
    image = image_record.image
    if previous is not None and previous.fingerprint == fingerprint(records):
        return Changes()  # the same image and findings as stored: nothing changed
    moved = previous is not None and previous.digest != image.digest
    hiding = any(
        isinstance(r, ErrorRecord) and (moved or r.stage in _HIDING_STAGES) for r in records
    )
    now: list[tuple[Package, Advisory]] = []
    seen: set[tuple[object, ...]] = set()
    new: list[VulnerabilityRecord] = []
    before = set() if previous is None else {
        _finding_id(p, a.id) for p, a in previous.records()
    }  # fmt: skip
    for r in records:
        if not isinstance(r, VulnerabilityRecord) or r.suppressed is not None:
            continue
        fid = _finding_id(r.package, r.advisory.id)
        if fid in seen:
            continue
        seen.add(fid)
        now.append((r.package, r.advisory))
        if fid not in before:
            new.append(r)
    resolved: list[ResolvedRecord] = []
    if previous is not None:
        gone = [(p, a) for p, a in previous.records() if _finding_id(p, a.id) not in seen]
        if hiding:
            # Findings may be missing for a reason other than a fix: keep them stored.
            now += gone
        elif gone:
            present: set[tuple[object, ...]] = set()
            if moved:
                if packages is None:
                    packages = (
                        r.package
                        for r in records
                        if isinstance(r, PackageRecord | VulnerabilityRecord)
                    )
                present = {_package_id(p) for p in packages}
            for pkg, adv in gone:
                if moved and _package_id(pkg) not in present:
                    reason = ResolveReason.PACKAGE_GONE
                elif not known(adv.id):
                    reason = ResolveReason.WITHDRAWN
                else:
                    reason = ResolveReason.FIXED_IN_INDEX
                resolved.append(
                    ResolvedRecord(
                        image=previous.image, package=pkg, advisory=adv, reason=reason,
                        resolved_at=at,
                    )
                )  # fmt: skip
    current = _build(image, now)
    if (previous is not None and current.fingerprint == previous.fingerprint) or (
        previous is None and not current.findings
    ):
        # Nothing to write: a warm run over unchanged images writes nothing.
        return Changes(new=new, resolved=resolved)
    return Changes(new=new, resolved=resolved, current=current)
