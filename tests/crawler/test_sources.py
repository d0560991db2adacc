"""Local image sources: OCI layouts and docker archives, built byte-exactly at test time.

The OCI layout writer below follows image-spec 1.1 (``oci-layout``, ``index.json``,
``blobs/sha256/<hex>`` named by the sha256 of their bytes); layers are real tars made by
``tarfile``. Where skopeo is installed (Debian package ``skopeo``, listed in
``.ci/apt-packages.txt``) it converts those layouts into real ``docker-archive`` tars.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import json
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from regsweep.crawler.oci import (
    CorruptArchive,
    DigestMismatch,
    InvalidReference,
    MalformedManifest,
    ManifestTooLarge,
    MediaType,
    NotFound,
    SizeMismatch,
    SourceError,
    Unsupported,
    UnsupportedMediaType,
    decode_config,
    decode_index,
    decode_manifest,
    parse_platform,
    platform_matches,
)
from regsweep.crawler.refs import SourceKind, parse_image_ref, parse_ref
from regsweep.crawler.sources import open_source
from regsweep.matcher.facts import error_code

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def make_tar(files: dict[str, bytes]) -> bytes:
    """A real layer tar holding ``files``."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = 1_700_000_000
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


class Layout:
    """Writes an OCI image layout per image-spec (``image-layout.md``)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        (root / "blobs" / "sha256").mkdir(parents=True)
        (root / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
        self.entries: list[dict[str, Any]] = []
        #: Uncompressed layer tars by layer blob digest, to check what open_layer yields.
        self.layer_tars: dict[str, bytes] = {}
        #: Descriptors the fixture wants to refer to by name.
        self.named: dict[str, dict[str, Any]] = {}

    def blob(self, data: bytes, media_type: str, **extra: Any) -> dict[str, Any]:
        digest = sha(data)
        (self.root / "blobs" / "sha256" / digest[7:]).write_bytes(data)
        return {"mediaType": media_type, "digest": digest, "size": len(data), **extra}

    def doc(self, obj: dict[str, Any], media_type: str, **extra: Any) -> dict[str, Any]:
        return self.blob(json.dumps(obj, indent=2).encode(), media_type, **extra)

    def image(
        self,
        os_: str,
        arch: str,
        variant: str | None = None,
        files: dict[str, bytes] | None = None,
        docker: bool = False,
    ) -> dict[str, Any]:
        """A one-layer image (OCI, or Docker schema 2 media types with ``docker``); returns
        its manifest descriptor with the platform set."""
        tar = make_tar(files or {"etc/os-release": f"ID={os_}-{arch}\n".encode()})
        layer_type, config_type, manifest_type = (
            (DOCKER_LAYER, DOCKER_CONFIG, DOCKER_MANIFEST)
            if docker
            else (LAYER_GZIP, OCI_CONFIG, OCI_MANIFEST)
        )
        layer = self.blob(gzip.compress(tar, mtime=0), layer_type)
        self.layer_tars[layer["digest"]] = tar
        platform = {"os": os_, "architecture": arch}
        if variant:
            platform["variant"] = variant
        config = self.doc(
            {
                **platform,
                "config": {"Env": ["PATH=/usr/bin"], "User": None},
                "rootfs": {"type": "layers", "diff_ids": [sha(tar)]},
                "history": [{"created_by": "ADD rootfs"}],
            },
            config_type,
        )
        manifest = {
            "schemaVersion": 2,
            "mediaType": manifest_type,
            "config": config,
            "layers": [layer],
        }
        return self.doc(manifest, manifest_type, platform=platform)

    def attestation(self, subject: str) -> dict[str, Any]:
        """A BuildKit-style attestation manifest (in-toto layer, unknown/unknown)."""
        stmt = self.blob(
            b'{"_type": "https://in-toto.io/Statement/v0.1"}', "application/vnd.in-toto+json"
        )
        config = self.doc(
            {
                "architecture": "unknown",
                "os": "unknown",
                "rootfs": {"type": "layers", "diff_ids": [stmt["digest"]]},
            },
            OCI_CONFIG,
        )
        return self.doc(
            {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config, "layers": [stmt]},
            OCI_MANIFEST,
            platform={"os": "unknown", "architecture": "unknown"},
            annotations={
                "vnd.docker.reference.type": "attestation-manifest",
                "vnd.docker.reference.digest": subject,
            },
        )

    def index(self, manifests: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
        return self.doc(
            {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests}, OCI_INDEX, **extra
        )

    def tag(self, desc: dict[str, Any], name: str) -> None:
        self.entries.append({**desc, "annotations": {"org.opencontainers.image.ref.name": name}})

    def write_index(self) -> None:
        (self.root / "index.json").write_text(
            json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": self.entries})
        )


def strip_platform(desc: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in desc.items() if k != "platform"}


@pytest.fixture
def layout(tmp_path: Path) -> Layout:
    """Tags: ``multi`` (index: amd64, arm64/v8, an attestation, a nested index with arm/v7),
    ``single`` (a bare amd64 manifest), ``sig`` (an artifact, not an image)."""
    lay = Layout(tmp_path / "layout")
    amd = lay.image("linux", "amd64")
    arm64 = lay.image("linux", "arm64", "v8")
    armv7 = lay.image("linux", "arm", "v7")
    nested = lay.index([armv7])
    multi = lay.index([amd, arm64, lay.attestation(amd["digest"]), nested])
    lay.tag(multi, "multi")
    lay.tag(strip_platform(lay.image("linux", "amd64", files={"a": b"single"})), "single")
    empty = lay.blob(b"{}", "application/vnd.oci.empty.v1+json")
    sig = lay.doc(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": "application/vnd.dev.cosign.simplesigning.v1+json",
            "config": empty,
            "layers": [empty],
        },
        OCI_MANIFEST,
    )
    lay.tag(sig, "sig")
    lay.write_index()
    lay.named.update(multi=multi, amd=amd, nested=nested)
    return lay


# --- references ------------------------------------------------------------------------


D = "sha256:" + "ab" * 32


@pytest.mark.parametrize(
    ("text", "path", "tag", "digest"),
    [
        ("oci:/srv/img", "/srv/img", None, None),
        ("oci:/srv/img:v1.2", "/srv/img", "v1.2", None),
        (f"oci:/srv/img@{D}", "/srv/img", None, D),
        ("oci:/srv/a:b/img:latest", "/srv/a:b/img", "latest", None),
        ("oci:/srv/a:b/img", "/srv/a:b/img", None, None),  # "b/img" is no tag: it has a '/'
        ("oci:/srv/img:v1:", "/srv/img:v1", None, None),  # trailing ':' escapes a dir name
        ("oci:rel/dir", "rel/dir", None, None),
    ],
)
def test_parse_oci_ref_splits_path_tag_digest_by_the_documented_rule(
    text: str, path: str, tag: str | None, digest: str | None
) -> None:
    ref = parse_ref(text)
    assert (ref.kind, ref.path, ref.tag, ref.digest) == (SourceKind.OCI_LAYOUT, path, tag, digest)


@pytest.mark.parametrize(
    ("text", "path", "tag", "digest"),
    [
        ("oci-archive:/srv/img.tar", "/srv/img.tar", None, None),
        ("oci-archive:/srv/img.tar:v1", "/srv/img.tar", "v1", None),
        (f"oci-archive:img.tar@{D}", "img.tar", None, D),
    ],
)
def test_parse_oci_archive_ref_as_oci(
    text: str, path: str, tag: str | None, digest: str | None
) -> None:
    ref = parse_ref(text)
    assert (ref.kind, ref.path, ref.tag, ref.digest) == (SourceKind.OCI_ARCHIVE, path, tag, digest)
    # "oci-archive:" is a transport, never a registry host (as "host:5000/repo" is).
    assert parse_image_ref("oci-archive:5000/img.tar") == parse_ref("oci-archive:5000/img.tar")


def test_parse_docker_archive_ref_keeps_colons_in_the_path() -> None:
    ref = parse_ref("docker-archive:/tmp/a:b.tar")
    assert (ref.kind, ref.path, ref.tag) == (SourceKind.DOCKER_ARCHIVE, "/tmp/a:b.tar", None)


@pytest.mark.parametrize(
    "text", ["", "/srv/img", "docker://alpine", "oci:", "oci::v1", "docker-archive:"]
)
def test_parse_ref_rejects_bad_references_with_invalid_reference(text: str) -> None:
    with pytest.raises(InvalidReference):
        parse_ref(text)


def test_the_walk_filters_platforms_by_their_aliases_too(tmp_path: Path) -> None:
    """An index child written ``aarch64`` (or ``x86_64``) is arm64 (amd64) to ``--platform``:
    the walk filters with the same matching as ``platform_matches``."""
    lay = Layout(tmp_path / "alias")
    lay.tag(lay.index([lay.image("linux", "aarch64"), lay.image("linux", "x86_64")]), "t")
    lay.write_index()
    [arm] = open_source(f"oci:{lay.root}:t", platform=parse_platform("linux/arm64")).images
    [amd] = open_source(f"oci:{lay.root}:t", platform=parse_platform("linux/amd64")).images
    assert (arm.ref.platform, amd.ref.platform) == ("linux/aarch64", "linux/x86_64")


def test_platform_filter_parsing_and_variant_defaults() -> None:
    """arm64 without a variant is v8; a filter without a variant accepts any variant."""
    from regsweep.crawler.oci import Platform

    assert str(parse_platform("linux/x86_64")) == "linux/amd64"
    arm64 = Platform(os="linux", architecture="arm64")
    assert platform_matches(parse_platform("linux/arm64/v8"), arm64)
    assert platform_matches(parse_platform("linux/arm64"), arm64)
    assert not platform_matches(parse_platform("linux/arm64/v9"), arm64)
    assert not platform_matches(parse_platform("linux/amd64"), arm64)
    for bad in ("linux", "linux/", "a/b/c/d", "linux/amd 64"):
        with pytest.raises(InvalidReference):
            parse_platform(bad)


# --- OCI layouts -------------------------------------------------------------------------


def test_index_is_followed_to_every_platform_and_attestations_are_skipped(layout: Layout) -> None:
    res = open_source(f"oci:{layout.root}:multi")
    assert not res.failures
    platforms = sorted(i.ref.platform or "" for i in res.images)
    assert platforms == ["linux/amd64", "linux/arm/v7", "linux/arm64/v8"]
    multi = layout.named["multi"]
    for image in res.images:
        # The recorded index is the one the tag names, even for the nested index's child.
        assert image.ref.index_digest == multi["digest"]
        assert image.ref.tag == "multi"
        assert image.ref.digest is not None and image.ref.digest != multi["digest"]
        assert sha(image.config) == image.manifest.config.digest
    assert any("attestation" in n for n in res.notes)


def test_layers_open_as_the_exact_blobs_named_by_the_manifest(layout: Layout) -> None:
    res = open_source(f"oci:{layout.root}:multi", platform=parse_platform("linux/arm/v7"))
    [image] = res.images
    [layer] = image.manifest.layers
    with image.open_layer(layer) as f:
        blob = f.read()
    assert sha(blob) == layer.digest and len(blob) == layer.size
    assert gzip.decompress(blob) == layout.layer_tars[layer.digest]
    assert image.config_view.rootfs is not None
    assert image.config_view.rootfs.diff_ids == [sha(layout.layer_tars[layer.digest])]


def test_platform_filter_narrows_and_a_missing_platform_is_not_found(layout: Layout) -> None:
    res = open_source(f"oci:{layout.root}:multi", platform=parse_platform("linux/arm64"))
    assert [i.ref.platform for i in res.images] == ["linux/arm64/v8"]
    with pytest.raises(NotFound, match="no image"):
        open_source(f"oci:{layout.root}:multi", platform=parse_platform("windows/amd64"))


def test_bare_manifest_takes_its_platform_from_the_config(layout: Layout) -> None:
    res = open_source(f"oci:{layout.root}:single")
    [image] = res.images
    assert image.ref.platform == "linux/amd64" and image.ref.index_digest is None
    none = open_source(f"oci:{layout.root}", platform=parse_platform("linux/arm64"))
    assert "single" not in {i.ref.tag for i in none.images}


def test_whole_layout_scans_every_tag_and_notes_the_artifact(layout: Layout) -> None:
    res = open_source(f"oci:{layout.root}")
    assert len(res.images) == 4
    assert any("cosign" in n for n in res.notes)


def test_digest_selects_a_platform_manifest_inside_an_index(layout: Layout) -> None:
    amd = layout.named["amd"]
    [image] = open_source(f"oci:{layout.root}@{amd['digest']}").images
    assert image.ref.digest == amd["digest"] and image.ref.platform == "linux/amd64"


def test_missing_tag_is_not_found_and_lists_the_tags(layout: Layout) -> None:
    with pytest.raises(NotFound, match=r"'multi'.*'sig'.*'single'"):
        open_source(f"oci:{layout.root}:nope")
    with pytest.raises(NotFound):
        open_source(f"oci:{layout.root}@sha256:{'0' * 64}")
    with pytest.raises(NotFound):
        open_source(f"oci:{layout.root / 'absent'}")


def _single(
    tmp_path: Path, manifest: dict[str, Any] | bytes, media_type: str = OCI_MANIFEST
) -> Layout:
    lay = Layout(tmp_path / "bad")
    data = manifest if isinstance(manifest, bytes) else json.dumps(manifest).encode()
    lay.tag(lay.blob(data, media_type), "t")
    lay.write_index()
    return lay


def _good_manifest(lay: Layout) -> dict[str, Any]:
    desc = lay.image("linux", "amd64")
    return json.loads((lay.root / "blobs/sha256" / desc["digest"][7:]).read_bytes())


def _only_error(lay: Layout) -> str:
    res = open_source(f"oci:{lay.root}:t")
    assert not res.images
    [failure] = res.failures
    return failure.error


def code(exc: type[Exception]) -> str:
    """The ``error`` code a failure of this exception class carries."""
    return error_code(exc())


def test_missing_layer_blob_fails_that_image_only(layout: Layout) -> None:
    """Other platforms go on when one image's layer is absent."""
    res = open_source(f"oci:{layout.root}:multi", platform=parse_platform("linux/arm/v7"))
    [layer] = res.images[0].manifest.layers
    (layout.root / "blobs/sha256" / layer.digest[7:]).unlink()
    res = open_source(f"oci:{layout.root}:multi")
    assert len(res.images) == 2
    [failure] = res.failures
    assert failure.error == code(NotFound) and failure.image.digest is not None


def test_config_with_other_content_is_a_digest_mismatch(tmp_path: Path) -> None:
    lay = Layout(tmp_path / "bad")
    m = _good_manifest(lay)
    path = lay.root / "blobs/sha256" / m["config"]["digest"][7:]
    data = path.read_bytes()
    path.write_bytes(data.replace(b"PATH", b"HTAP"))  # same size, other content
    lay.tag(lay.doc(m, OCI_MANIFEST), "t")
    lay.write_index()
    assert _only_error(lay) == code(DigestMismatch)


def test_layer_of_another_size_than_its_descriptor_is_refused(tmp_path: Path) -> None:
    lay = Layout(tmp_path / "bad")
    m = _good_manifest(lay)
    m["layers"][0]["size"] += 1
    lay.tag(lay.doc(m, OCI_MANIFEST), "t")
    lay.write_index()
    assert _only_error(lay) == code(SizeMismatch)


def test_document_claiming_another_media_type_is_refused(tmp_path: Path) -> None:
    lay = Layout(tmp_path / "bad")
    m = _good_manifest(lay)
    m["mediaType"] = OCI_INDEX
    lay.tag(lay.doc(m, OCI_MANIFEST), "t")
    lay.write_index()
    assert _only_error(lay) == code(UnsupportedMediaType)


def test_unknown_layer_media_type_is_refused(tmp_path: Path) -> None:
    lay = Layout(tmp_path / "bad")
    m = _good_manifest(lay)
    m["layers"][0]["mediaType"] = "application/x-rar"
    lay.tag(lay.doc(m, OCI_MANIFEST), "t")
    lay.write_index()
    assert _only_error(lay) == code(UnsupportedMediaType)


def test_enormous_manifest_is_refused_before_reading(tmp_path: Path) -> None:
    lay = Layout(tmp_path / "bad")
    big = json.dumps({"schemaVersion": 2, "pad": "x" * (5 * 1024 * 1024)}).encode()
    lay.tag(lay.blob(big, OCI_MANIFEST), "t")
    lay.write_index()
    assert _only_error(lay) == code(ManifestTooLarge)


@pytest.mark.parametrize(
    "data",
    [
        b"{not json",
        b"[]",
        b'{"schemaVersion": 2, "config": 5, "layers": []}',
        b"\xff\xfe\x00garbage",
    ],
)
def test_malformed_manifest_json_is_malformed_manifest(tmp_path: Path, data: bytes) -> None:
    assert _only_error(_single(tmp_path, data)) == code(MalformedManifest)


def test_schema1_manifest_is_unsupported(tmp_path: Path) -> None:
    schema1 = {"schemaVersion": 1, "name": "library/x", "tag": "1", "fsLayers": [], "history": []}
    lay = _single(tmp_path, schema1, "application/vnd.docker.distribution.manifest.v1+prettyjws")
    assert _only_error(lay) == code(Unsupported)
    lay2 = _single(tmp_path / "b", schema1, OCI_MANIFEST)
    assert _only_error(lay2) == code(Unsupported)


def test_unknown_layout_version_and_malformed_index_json_raise(layout: Layout) -> None:
    (layout.root / "index.json").write_text('{"schemaVersion": 2, "manifests": [{"digest": 1}]}')
    with pytest.raises(MalformedManifest):
        open_source(f"oci:{layout.root}")
    (layout.root / "oci-layout").write_text('{"imageLayoutVersion": "2.0.0"}')
    with pytest.raises(Unsupported):
        open_source(f"oci:{layout.root}")
    (layout.root / "oci-layout").unlink()
    with pytest.raises(NotFound, match="oci-layout"):
        open_source(f"oci:{layout.root}")


def test_digest_with_path_characters_is_never_used_as_a_path(tmp_path: Path) -> None:
    lay = Layout(tmp_path / "bad")
    m = _good_manifest(lay)
    m["layers"][0]["digest"] = "sha256:../../../../etc/passwd"
    lay.tag(lay.doc(m, OCI_MANIFEST), "t")
    lay.write_index()
    assert _only_error(lay) == code(MalformedManifest)


# --- docker archives ---------------------------------------------------------------------


def _tar_dir(root: Path, out: Path, compress: bool = False) -> Path:
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for p in sorted(root.rglob("*")):
            tf.add(p, arcname=str(p.relative_to(root)), recursive=False)
    raw = data.getvalue()
    out.write_bytes(gzip.compress(raw) if compress else raw)
    return out


def _old_format_archive(tmp_path: Path) -> tuple[Path, bytes, list[bytes]]:
    """A ``docker save`` tar in the pre-25 format (manifest.json, repositories,
    <id>/layer.tar, <hex>.json), with a repeated layer stored as a symlink like Docker does."""
    root = tmp_path / "save"
    root.mkdir()
    tars = [make_tar({"etc/os-release": b"ID=debian\n"}), make_tar({"app": b"x"})]
    tars.append(tars[0])  # the same diff twice: Docker links the second copy
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "config": {"User": "app", "Env": None, "ExposedPorts": {"22/tcp": {}}},
            "rootfs": {"type": "layers", "diff_ids": [sha(t) for t in tars]},
        }
    ).encode()
    (root / f"{sha(config)[7:]}.json").write_bytes(config)
    layers = []
    for i, t in enumerate(tars[:2]):
        d = root / f"{i:064x}"
        d.mkdir()
        (d / "layer.tar").write_bytes(t)
        (d / "VERSION").write_text("1.0")
        layers.append(f"{i:064x}/layer.tar")
    link = root / f"{2:064x}"
    link.mkdir()
    (link / "layer.tar").symlink_to(f"../{0:064x}/layer.tar")
    layers.append(f"{2:064x}/layer.tar")
    manifest = [
        {"Config": f"{sha(config)[7:]}.json", "RepoTags": ["example/app:1.0"], "Layers": layers}
    ]
    (root / "manifest.json").write_text(json.dumps(manifest))
    (root / "repositories").write_text(json.dumps({"example/app": {"1.0": f"{2:064x}"}}))
    return root, config, tars


@pytest.mark.parametrize("compress", [False, True])
def test_old_docker_save_format_reads_config_and_layers_in_place(
    tmp_path: Path, compress: bool
) -> None:
    root, config, tars = _old_format_archive(tmp_path)
    archive = _tar_dir(root, tmp_path / "save.tar", compress)
    with open_source(f"docker-archive:{archive}") as res:
        [image] = res.images
        assert image.config == config and image.ref.digest == sha(config)
        assert (image.ref.repository, image.ref.tag, image.ref.platform) == (
            "example/app",
            "1.0",
            "linux/amd64",
        )
        assert image.manifest_media_type is None
        for layer, tar in zip(image.manifest.layers, tars, strict=True):
            with image.open_layer(layer) as f:
                assert f.read() == tar
            assert layer.digest == sha(tar) and layer.size == len(tar)


def test_oci_style_docker_archive_follows_every_platform(layout: Layout, tmp_path: Path) -> None:
    """Docker >= 25 writes an OCI layout inside the tar; it is read like the directory."""
    (layout.root / "manifest.json").write_text("[]")
    archive = _tar_dir(layout.root, tmp_path / "oci.tar")
    with open_source(f"docker-archive:{archive}") as res:
        assert len(res.images) == 4
        arm = next(i for i in res.images if i.ref.platform == "linux/arm/v7")
        [layer] = arm.manifest.layers
        with arm.open_layer(layer) as f:
            assert gzip.decompress(f.read()) == layout.layer_tars[layer.digest]


@pytest.mark.parametrize("compress", [False, True])
def test_truncated_archive_is_corrupt_archive(tmp_path: Path, compress: bool) -> None:
    root, _, _ = _old_format_archive(tmp_path)
    full = _tar_dir(root, tmp_path / "full.tar", compress).read_bytes()
    for cut in (len(full) // 3, len(full) - 1500, 100):
        bad = tmp_path / f"cut{cut}.tar"
        bad.write_bytes(full[:cut])
        with pytest.raises(CorruptArchive):
            open_source(f"docker-archive:{bad}")


def test_archive_that_is_not_a_docker_save_is_refused(tmp_path: Path) -> None:
    plain = tmp_path / "plain.tar"
    plain.write_bytes(make_tar({"hello": b"x"}) + b"\0" * 1024)
    with pytest.raises(NotFound, match="manifest.json"):
        open_source(f"docker-archive:{plain}")
    with pytest.raises(NotFound):
        open_source(f"docker-archive:{tmp_path / 'absent.tar'}")
    garbage = tmp_path / "garbage.tar"
    garbage.write_bytes(b"\x01" * 4096)
    with pytest.raises(CorruptArchive):
        open_source(f"docker-archive:{garbage}")


SKOPEO = shutil.which("skopeo")


@pytest.mark.skipif(SKOPEO is None, reason="skopeo is not installed (apt-get install skopeo)")
def test_skopeo_docker_archive_of_our_layout_gives_the_same_image(
    layout: Layout, tmp_path: Path
) -> None:
    """A real docker-archive written by skopeo resolves to the same config and layer diffs."""
    archive = tmp_path / "skopeo.tar"
    subprocess.run(
        [
            SKOPEO,
            "--insecure-policy",
            "copy",
            "--quiet",
            f"oci:{layout.root}:single",
            f"docker-archive:{archive}:example/single:1",
        ],
        check=True,
        capture_output=True,
    )
    [original] = open_source(f"oci:{layout.root}:single").images
    with open_source(f"docker-archive:{archive}") as res:
        [image] = res.images
        assert image.config == original.config
        assert (image.ref.repository, image.ref.tag) == ("docker.io/example/single", "1")
        for layer in image.manifest.layers:
            with image.open_layer(layer) as f:
                blob = f.read()
            assert sha(blob) == layer.digest
            diff = gzip.decompress(blob) if blob[:2] == b"\x1f\x8b" else blob
            assert original.config_view.rootfs is not None
            assert sha(diff) in original.config_view.rootfs.diff_ids


def test_a_tar_that_is_no_oci_layout_is_refused_as_oci_archive(tmp_path: Path) -> None:
    with pytest.raises(NotFound, match="no oci-layout"):
        open_source(f"oci-archive:{_plain_tar(tmp_path)}")


def _plain_tar(tmp_path: Path) -> Path:
    path = tmp_path / "plain.tar"
    with tarfile.open(path, "w") as tf:
        info = tarfile.TarInfo("hello.txt")
        info.size = 2
        tf.addfile(info, io.BytesIO(b"hi"))
    return path


def test_missing_index_blob_fails_the_subtree_with_its_digest(layout: Layout) -> None:
    nested = layout.named["nested"]
    (layout.root / "blobs/sha256" / nested["digest"][7:]).unlink()
    res = open_source(f"oci:{layout.root}:multi")
    assert sorted(i.ref.platform or "" for i in res.images) == ["linux/amd64", "linux/arm64/v8"]
    [failure] = res.failures
    assert failure.error == code(NotFound)
    assert failure.image.index_digest == nested["digest"] and failure.image.digest is None


def test_indexes_nested_too_deep_are_refused(tmp_path: Path) -> None:
    lay = Layout(tmp_path / "deep")
    desc = lay.image("linux", "amd64")
    for _ in range(12):
        desc = lay.index([desc])
    lay.tag(desc, "t")
    lay.write_index()
    [failure] = open_source(f"oci:{lay.root}:t").failures
    assert failure.error == code(MalformedManifest) and "deeper" in failure.message


def test_config_and_manifest_disagreeing_on_layer_count_are_malformed(tmp_path: Path) -> None:
    lay = Layout(tmp_path / "bad")
    m = _good_manifest(lay)
    m["layers"].append(m["layers"][0])
    lay.tag(lay.doc(m, OCI_MANIFEST), "t")
    lay.write_index()
    assert _only_error(lay) == code(MalformedManifest)


def test_compressed_layer_in_old_format_archive_is_hashed_and_typed_gzip(tmp_path: Path) -> None:
    """docker save never compresses, but a hand-made archive may: its digest is then the
    blob's own sha256 (not the diff_id) so that the layer streamer's check still holds."""
    root, _, tars = _old_format_archive(tmp_path)
    blob = gzip.compress(tars[1], mtime=0)
    (root / f"{1:064x}" / "layer.tar").write_bytes(blob)
    archive = _tar_dir(root, tmp_path / "save.tar")
    with open_source(f"docker-archive:{archive}") as res:
        [image] = res.images
        layer = image.manifest.layers[1]
        assert layer.digest == sha(blob) and layer.media_type == LAYER_GZIP


def test_old_format_config_not_matching_its_file_name_is_a_digest_mismatch(tmp_path: Path) -> None:
    root, config, _ = _old_format_archive(tmp_path)
    (root / f"{sha(config)[7:]}.json").write_bytes(config.replace(b"amd64", b"arm64"))
    archive = _tar_dir(root, tmp_path / "save.tar")
    with open_source(f"docker-archive:{archive}") as res:
        [failure] = res.failures
        assert failure.error == code(DigestMismatch)
        assert failure.image.repository == "example/app"


def test_platform_filter_applies_to_a_directly_tagged_manifest_with_a_platform(
    tmp_path: Path,
) -> None:
    lay = Layout(tmp_path / "p")
    lay.tag(lay.image("linux", "arm64", "v8"), "t")  # the descriptor carries its platform
    lay.write_index()
    with pytest.raises(NotFound):
        open_source(f"oci:{lay.root}:t", platform=parse_platform("linux/amd64"))
    assert len(open_source(f"oci:{lay.root}:t", platform=parse_platform("linux/arm64")).images) == 1


@pytest.mark.skipif(SKOPEO is None, reason="skopeo is not installed (apt-get install skopeo)")
def test_layout_written_by_skopeo_copy_all_resolves_to_every_platform(tmp_path: Path) -> None:
    """skopeo's own OCI layout writer (a second, independent producer of the format). skopeo
    1.9 cannot copy nested indexes, so this layout has a flat one."""
    lay = Layout(tmp_path / "flat")
    amd = lay.image("linux", "amd64")
    lay.tag(
        lay.index([amd, lay.image("linux", "arm64", "v8"), lay.attestation(amd["digest"])]), "m"
    )
    lay.write_index()
    out = tmp_path / "copied"
    subprocess.run(
        [
            SKOPEO,
            "--insecure-policy",
            "copy",
            "--quiet",
            "--all",
            f"oci:{lay.root}:m",
            f"oci:{out}:copied",
        ],
        check=True,
        capture_output=True,
    )
    res = open_source(f"oci:{out}:copied")
    assert sorted(i.ref.platform or "" for i in res.images) == ["linux/amd64", "linux/arm64/v8"]
    assert not res.failures and any("attestation" in n for n in res.notes)


# --- fuzzing: whatever the bytes, only SourceError comes out --------------------------------


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(
            st.sampled_from(
                [
                    "schemaVersion",
                    "mediaType",
                    "config",
                    "layers",
                    "manifests",
                    "digest",
                    "size",
                    "platform",
                    "os",
                    "architecture",
                    "rootfs",
                    "diff_ids",
                    "Env",
                    "annotations",
                ]
            ),
            inner,
            max_size=6,
        )
    ),
    max_leaves=20,
)


@given(st.one_of(st.binary(max_size=200), _json.map(lambda v: json.dumps(v).encode())))
def test_decoders_raise_only_source_errors_on_arbitrary_input(data: bytes) -> None:
    for decode in (
        lambda: decode_manifest(data, MediaType.OCI_MANIFEST, "fuzz"),
        lambda: decode_index(data, MediaType.OCI_INDEX, "fuzz"),
        lambda: decode_config(data, "fuzz"),
    ):
        with contextlib.suppress(SourceError):
            decode()


@given(st.text(max_size=40))
def test_parse_ref_raises_only_invalid_reference(text: str) -> None:
    with contextlib.suppress(InvalidReference):
        ref = parse_ref(text)
        assert ref.path and ref.text == text


def _valid_old_archive_bytes(compress: bool) -> bytes:
    with tempfile.TemporaryDirectory() as tmp:
        root, _, _ = _old_format_archive(Path(tmp))
        return _tar_dir(root, Path(tmp) / "a.tar", compress).read_bytes()


_VALID_ARCHIVES = [_valid_old_archive_bytes(False), _valid_old_archive_bytes(True)]


@given(
    st.sampled_from(_VALID_ARCHIVES),
    st.lists(st.tuples(st.integers(0, 1 << 16), st.integers(0, 255)), max_size=8),
    st.integers(0, 1 << 16),
)
def test_corrupted_docker_archive_raises_only_source_errors(
    archive: bytes, flips: list[tuple[int, int]], cut: int
) -> None:
    """Bytes flipped and the tail cut off a valid archive (plain or gzip): a SourceError
    or images whose layers read without any other exception — never a crash."""
    data = bytearray(archive[: cut % (len(archive) + 1)])
    for pos, value in flips:
        if data:
            data[pos % len(data)] = value
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "fuzz.tar"
        path.write_bytes(bytes(data))
        try:
            with open_source(f"docker-archive:{path}") as res:
                for image in res.images:
                    for layer in image.manifest.layers:
                        with image.open_layer(layer) as f:
                            f.read()
        except SourceError:
            pass


def test_full_reference_ref_names_select_by_tag_and_fill_the_repository(tmp_path: Path) -> None:
    """containerd/nerdctl write whole references as ref names; ``:TAG`` still selects."""
    lay = Layout(tmp_path / "full")
    lay.tag(lay.image("linux", "amd64"), "docker.io/library/alpine:3.19")
    lay.write_index()
    [image] = open_source(f"oci:{lay.root}:3.19").images
    assert (image.ref.repository, image.ref.tag) == ("docker.io/library/alpine", "3.19")


def test_gzip_archive_with_a_bad_deflate_block_is_corrupt_archive(tmp_path: Path) -> None:
    """Found by the fuzzer above: isal's IsalError used to escape as a raw exception."""
    data = bytearray(_VALID_ARCHIVES[1])
    data[len(data) // 2] ^= 0xFF
    path = tmp_path / "bad.tar.gz"
    path.write_bytes(bytes(data))
    with pytest.raises(CorruptArchive), open_source(f"docker-archive:{path}") as res:
        for image in res.images:
            for layer in image.manifest.layers:
                with image.open_layer(layer) as f:
                    f.read()


def test_docker_manifest_list_is_followed_like_an_oci_index(tmp_path: Path) -> None:
    """Docker schema 2 manifest list + manifests + container configs + rootfs layers."""
    lay = Layout(tmp_path / "docker")
    images = [lay.image("linux", a, docker=True) for a in ("amd64", "s390x")]
    listed = lay.doc(
        {"schemaVersion": 2, "mediaType": DOCKER_LIST, "manifests": images}, DOCKER_LIST
    )
    lay.tag(listed, "d")
    lay.write_index()
    res = open_source(f"oci:{lay.root}:d")
    assert sorted(i.ref.platform or "" for i in res.images) == ["linux/amd64", "linux/s390x"]
    assert {i.manifest_media_type for i in res.images} == {MediaType.DOCKER_MANIFEST}
    assert all(i.ref.index_digest == listed["digest"] for i in res.images)


def test_json_nested_too_deep_in_a_config_fails_that_image_only(tmp_path: Path) -> None:
    """A config with an array nested 100,000 deep (in a field nobody reads): that image is a
    ``malformed_manifest`` failure, the other platform is resolved, nothing raises."""
    lay = Layout(tmp_path / "deep")
    good = lay.image("linux", "amd64")
    tar = make_tar({"etc/os-release": b"ID=x\n"})
    layer = lay.blob(gzip.compress(tar, mtime=0), LAYER_GZIP)
    deep = b"[" * 100_000 + b"]" * 100_000
    config = lay.blob(
        b'{"architecture":"arm64","os":"linux","x":' + deep
        + b',"rootfs":{"type":"layers","diff_ids":["' + sha(tar).encode() + b'"]}}',
        OCI_CONFIG,
    )  # fmt: skip
    bad = lay.doc(
        {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config, "layers": [layer]},
        OCI_MANIFEST,
        platform={"os": "linux", "architecture": "arm64"},
    )
    lay.tag(lay.index([good, bad]), "t")
    lay.write_index()
    res = open_source(f"oci:{lay.root}:t")
    assert [i.ref.platform for i in res.images] == ["linux/amd64"]
    [failure] = res.failures
    assert failure.error == code(MalformedManifest) and "nested too deeply" in failure.message


@pytest.mark.parametrize(
    "text", ["dir:/srv/a@b", "sbom:app@1.0.json", "oci-archive:/srv/a@b.tar", "oci:/srv/a@b"]
)
def test_a_local_path_with_an_at_sign_is_no_credential(text: str) -> None:
    """Every local transport's path may hold "@": it is a path, never a user name."""
    ref = parse_image_ref(text)
    assert not hasattr(ref, "host") and "@" in ref.path  # type: ignore[union-attr]
