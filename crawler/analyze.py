"""Image analysis: one resolved platform image → the facts its layers hold.

``analyze_image`` streams every layer once through ``layers.scan_layer`` (each layer's own
facts: what the analyzers read in its files), then ``assemble`` merges the layers' facts with
overlay semantics and runs the analyzers' assembly in order: the OS first (it fixes the
advisory ecosystem), the OS package managers next (they record which files they own), the
language analyzers last (a module the OS installed is marked as owned). The registry crawl
does the same with layer facts from its cache. The result states facts only; judging them
is the matcher's business.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import BinaryIO, cast

from regsweep.crawler import layers
from regsweep.crawler.analyzers.apk import ApkAnalyzer
from regsweep.crawler.analyzers.dotnet import DotnetDepsAnalyzer
from regsweep.crawler.analyzers.dpkg import DpkgAnalyzer
from regsweep.crawler.analyzers.gobinary import GoBinaryAnalyzer
from regsweep.crawler.analyzers.interface import Analyzer, AnalyzerError, Budget, Context
from regsweep.crawler.analyzers.java import JavaAnalyzer
from regsweep.crawler.analyzers.npm import NpmAnalyzer
from regsweep.crawler.analyzers.os import OsAnalyzer
from regsweep.crawler.analyzers.php import ComposerAnalyzer
from regsweep.crawler.analyzers.python import PythonAnalyzer
from regsweep.crawler.analyzers.rpm import RpmAnalyzer
from regsweep.crawler.analyzers.ruby import GemspecAnalyzer
from regsweep.crawler.analyzers.rust import RustBinaryAnalyzer
from regsweep.crawler.sources import ResolvedImage
from regsweep.matcher.facts import ImageFacts, Problem, error_code


def default_analyzers() -> list[Analyzer]:
    """A fresh list of every analyzer, in the order they must run (see the module doc)."""
    return [
        OsAnalyzer(),
        DpkgAnalyzer(),
        ApkAnalyzer(),
        RpmAnalyzer(),
        PythonAnalyzer(),
        NpmAnalyzer(),
        JavaAnalyzer(),
        GoBinaryAnalyzer(),
        RustBinaryAnalyzer(),
        GemspecAnalyzer(),
        ComposerAnalyzer(),
        DotnetDepsAnalyzer(),
    ]


def analyze_image(
    image: ResolvedImage,
    analyzers: Sequence[Analyzer],
    *,
    analyzer_set: str = "",
    budget: Budget | None = None,
) -> ImageFacts:
    """Stream the image's layers once each and assemble the analyzers' facts about them."""
    manifest = image.manifest
    diff_ids = image.config_view.rootfs.diff_ids if image.config_view.rootfs else []
    facts = ImageFacts(
        image=image.ref,
        config=image.config,
        layers=len(manifest.layers),
        size=sum(d.size for d in manifest.layers),
    )
    if len(diff_ids) != len(manifest.layers):
        facts.problems.append(
            Problem(
                stage="layer",
                error="diff_ids_mismatch",
                message=f"{len(manifest.layers)} layers but {len(diff_ids)} diff_ids in the config",
            )
        )
        facts.complete = False
        return facts
    scanned: list[layers.LayerFacts] = []
    for desc, diff_id in zip(manifest.layers, diff_ids, strict=True):
        try:
            with cast(BinaryIO, image.open_layer(desc)) as stream:
                scanned.append(
                    layers.scan_layer(
                        stream,
                        media_type=desc.media_type,
                        digest=desc.digest,
                        diff_id=diff_id,
                        analyzers=analyzers,
                        analyzer_set=analyzer_set,
                        size=desc.size,
                        budget=budget,
                    )
                )
        except layers.LayerError as exc:
            facts.problems.append(Problem(stage="layer", error=error_code(exc), message=str(exc)))
            facts.complete = False
            return facts
        except OSError as exc:
            facts.problems.append(
                Problem(stage="layer", error="read_failed", message=str(exc), retryable=True)
            )
            facts.complete = False
            return facts
    assemble(scanned, analyzers, facts)
    return facts


def assemble(
    scanned: Sequence[layers.LayerFacts], analyzers: Sequence[Analyzer], facts: ImageFacts
) -> None:
    """Merge the layers' facts (lowest first) and run the analyzers' assembly in order,
    filling ``facts``: the OS first, then the OS package managers (their file lists mark what
    they own), then the rest. Parses nothing: its cost is per package, not per byte."""
    view = layers.merge(scanned)
    facts.problems += [Problem(stage="layer", error="layer_note", message=n) for n in view.notes]
    ctx = Context()
    for analyzer in analyzers:
        try:
            result = analyzer.assemble(view, ctx)
        except AnalyzerError as exc:
            facts.problems.append(
                Problem(stage="analyzer", error=error_code(exc), message=f"{analyzer.NAME}: {exc}")
            )
            continue
        if result.os is not None:
            ctx.os = result.os
        if result.ecosystem is not None:
            ctx.ecosystem = result.ecosystem
        ctx.owners.update(result.owners)
        facts.packages += result.packages
        facts.problems += [
            Problem(stage="analyzer", error=f"{analyzer.NAME}_note", message=n)
            for n in result.notes
        ]
    facts.os, facts.ecosystem = ctx.os, ctx.ecosystem
