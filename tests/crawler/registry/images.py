"""Byte-exact test images and a pusher that uploads them through the registry HTTP API.

Layers are real gzip-compressed tars (fixed mtimes, so digests repeat across runs); configs
carry ``rootfs.diff_ids`` that match the uncompressed layers. The set covers an OCI image,
a Docker schema 2 image, an OCI index with two platforms and a BuildKit-style attestation
manifest, and a Docker manifest list.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import random
import ssl
import tarfile
import urllib.error
import urllib.request
from dataclasses import dataclass, field

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
IN_TOTO = "application/vnd.in-toto+json"


def sha256(data: bytes) -> str:
    """``sha256:<hex>`` of ``data``."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


def canonical(obj: object) -> bytes:
    """Compact JSON, keys in insertion order (what the manifests' digests are taken over)."""
    return json.dumps(obj, separators=(",", ":")).encode()


@dataclass(frozen=True)
class Blob:
    """Bytes with their digest."""

    data: bytes

    @property
    def digest(self) -> str:
        """Content digest."""
        return sha256(self.data)


@dataclass(frozen=True)
class Doc:
    """A manifest or index and its media type."""

    data: bytes
    media_type: str

    @property
    def digest(self) -> str:
        """Content digest."""
        return sha256(self.data)


def make_layer(files: dict[str, bytes]) -> tuple[Blob, str]:
    """A gzip tar layer holding ``files``; returns the blob and its ``diff_id``."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in sorted(files.items()):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = 1716163200
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
    tar_bytes = raw.getvalue()
    return Blob(gzip.compress(tar_bytes, mtime=0)), sha256(tar_bytes)


def _descriptor(media_type: str, data: bytes, **extra: object) -> dict[str, object]:
    return {"mediaType": media_type, "digest": sha256(data), "size": len(data), **extra}


@dataclass
class ImageSet:
    """Every blob and manifest pushed, and which repo:tag points at what."""

    blobs: dict[str, Blob] = field(default_factory=dict)
    #: repo -> {tag: Doc}; children of indexes are pushed by digest into the same repo.
    tags: dict[str, dict[str, Doc]] = field(default_factory=dict)
    children: dict[str, list[Doc]] = field(default_factory=dict)
    #: repo -> blob digests that must be present in it.
    repo_blobs: dict[str, list[str]] = field(default_factory=dict)

    def add_blob(self, repo: str, blob: Blob) -> str:
        """Record ``blob`` as needed by ``repo``; returns its digest."""
        self.blobs[blob.digest] = blob
        self.repo_blobs.setdefault(repo, [])
        if blob.digest not in self.repo_blobs[repo]:
            self.repo_blobs[repo].append(blob.digest)
        return blob.digest


def _image(
    images: ImageSet, repo: str, arch: str, *, docker: bool, layers: list[tuple[Blob, str]]
) -> Doc:
    config = canonical(
        {
            "architecture": arch,
            "os": "linux",
            "config": {"User": "1000", "Env": ["PATH=/usr/bin"], "Cmd": ["sh"]},
            "rootfs": {"type": "layers", "diff_ids": [diff for _, diff in layers]},
        }
    )
    images.add_blob(repo, Blob(config))
    for blob, _ in layers:
        images.add_blob(repo, blob)
    manifest: dict[str, object] = {
        "schemaVersion": 2,
        "mediaType": DOCKER_MANIFEST if docker else OCI_MANIFEST,
        "config": _descriptor(DOCKER_CONFIG if docker else OCI_CONFIG, config),
        "layers": [_descriptor(DOCKER_LAYER if docker else OCI_LAYER, b.data) for b, _ in layers],
    }
    return Doc(canonical(manifest), DOCKER_MANIFEST if docker else OCI_MANIFEST)


def build_images(page_repos: int = 12) -> ImageSet:
    """The test image set (deterministic bytes)."""
    images = ImageSet()
    base = make_layer(
        {
            "etc/os-release": b'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\n'
            b'VERSION_ID="12"\n',
            "var/lib/dpkg/status": b"Package: base-files\nStatus: install ok installed\n"
            b"Version: 12.4\nArchitecture: amd64\n\n",
        }
    )
    base_arm = make_layer({"etc/os-release": b'ID=debian\nVERSION_ID="12"\n', "arm64": b"\x7fELF"})
    app = make_layer({"app/app.py": b"print('hello')\n" * 200})

    # Incompressible, so the blob spans many chunks: streaming and early-stop tests need
    # a body that is still in flight after the first chunk.
    big = make_layer({"data/blob.bin": random.Random(5).randbytes(2 * 1024 * 1024)})
    oci = _image(images, "test/oci", "amd64", docker=False, layers=[base, app, big])
    images.tags["test/oci"] = {"1.0": oci, "1.1": oci, "latest": oci}
    docker = _image(images, "test/docker", "amd64", docker=True, layers=[base, app])
    images.tags["test/docker"] = {"1.0": docker}

    # OCI index: two platforms plus an attestation manifest (as BuildKit writes it).
    amd = _image(images, "test/multi", "amd64", docker=False, layers=[base])
    arm = _image(images, "test/multi", "arm64", docker=False, layers=[base_arm])
    statement = Blob(canonical({"_type": "https://in-toto.io/Statement/v0.1", "subject": []}))
    empty_config = Blob(b"{}")
    images.add_blob("test/multi", statement)
    images.add_blob("test/multi", empty_config)
    attestation = Doc(
        canonical(
            {
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "config": _descriptor(OCI_CONFIG, empty_config.data),
                "layers": [
                    _descriptor(
                        IN_TOTO,
                        statement.data,
                        annotations={"in-toto.io/predicate-type": "https://spdx.dev/Document"},
                    )
                ],
            }
        ),
        OCI_MANIFEST,
    )
    index = Doc(
        canonical(
            {
                "schemaVersion": 2,
                "mediaType": OCI_INDEX,
                "manifests": [
                    _descriptor(
                        OCI_MANIFEST, amd.data, platform={"architecture": "amd64", "os": "linux"}
                    ),
                    _descriptor(
                        OCI_MANIFEST,
                        arm.data,
                        platform={"architecture": "arm64", "os": "linux", "variant": "v8"},
                    ),
                    _descriptor(
                        OCI_MANIFEST,
                        attestation.data,
                        platform={"architecture": "unknown", "os": "unknown"},
                        annotations={
                            "vnd.docker.reference.digest": amd.digest,
                            "vnd.docker.reference.type": "attestation-manifest",
                        },
                    ),
                ],
            }
        ),
        OCI_INDEX,
    )
    images.children["test/multi"] = [amd, arm, attestation]
    images.tags["test/multi"] = {"1.0": index}

    damd = _image(images, "test/list", "amd64", docker=True, layers=[base])
    darm = _image(images, "test/list", "arm64", docker=True, layers=[base_arm])
    mlist = Doc(
        canonical(
            {
                "schemaVersion": 2,
                "mediaType": DOCKER_LIST,
                "manifests": [
                    _descriptor(
                        DOCKER_MANIFEST,
                        damd.data,
                        platform={"architecture": "amd64", "os": "linux"},
                    ),
                    _descriptor(
                        DOCKER_MANIFEST,
                        darm.data,
                        platform={"architecture": "arm64", "os": "linux", "variant": "v8"},
                    ),
                ],
            }
        ),
        DOCKER_LIST,
    )
    images.children["test/list"] = [damd, darm]
    images.tags["test/list"] = {"1.0": mlist}

    for i in range(page_repos):
        repo = f"page/r{i:02d}"
        images.tags[repo] = {"v1": _image(images, repo, "amd64", docker=False, layers=[app])}
    return images


def _request(
    method: str,
    url: str,
    *,
    data: bytes | None = None,
    headers: dict[str, str] | None = None,
    context: ssl.SSLContext | None = None,
) -> tuple[int, dict[str, str]]:
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10, context=context) as resp:
            resp.read()
            return resp.status, dict(resp.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers)


def push(base_url: str, images: ImageSet) -> int:
    """Upload ``images`` to an anonymous registry (monolithic blob uploads, manifest PUTs).

    Returns the number of requests made. Raises ``AssertionError`` on any refusal.
    """
    count = 0
    for repo, digests in images.repo_blobs.items():
        for digest in digests:
            status, headers = _request("POST", f"{base_url}/v2/{repo}/blobs/uploads/")
            assert status == 202, (repo, status)
            location = headers["Location"]
            if location.startswith("/"):
                location = base_url + location
            sep = "&" if "?" in location else "?"
            status, _ = _request(
                "PUT",
                f"{location}{sep}digest={digest}",
                data=images.blobs[digest].data,
                headers={"Content-Type": "application/octet-stream"},
            )
            assert status == 201, (repo, digest, status)
            count += 2
    for repo, tags in images.tags.items():
        docs = [(child.digest, child) for child in images.children.get(repo, [])]
        docs += list(tags.items())
        for ref, doc in docs:
            status, headers = _request(
                "PUT",
                f"{base_url}/v2/{repo}/manifests/{ref}",
                data=doc.data,
                headers={"Content-Type": doc.media_type},
            )
            assert status == 201, (repo, ref, status)
            assert headers.get("Docker-Content-Digest") == doc.digest
            count += 1
    return count
