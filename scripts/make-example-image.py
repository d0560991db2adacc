"""Write the example image `make run` scans: an OCI image layout with two platforms.

Everything in it is a real format, written byte for byte as the tools write it: a tar
layer per platform (gzip), dpkg's ``status`` database and ``info/*.list`` file lists, apk's
``installed`` database, Python ``.dist-info/METADATA`` and an npm ``package.json``. The
package versions are chosen to meet the advisories bundled in ``tests/data/advisories``
(and to miss some: a fixed firefox-esr on Debian 10 would not match here either).

    python scripts/make-example-image.py OUT_DIR

Deterministic: the same bytes (and digests) every run.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import sys
import tarfile
from pathlib import Path

import msgspec

MTIME = 1_716_163_200  # a fixed SOURCE_DATE_EPOCH: identical digests on every run

DEBIAN_STATUS = """\
Package: libssl1.1
Status: install ok installed
Priority: optional
Section: libs
Installed-Size: 4120
Maintainer: Debian OpenSSL Team <pkg-openssl-devel@alioth-lists.debian.net>
Architecture: amd64
Multi-Arch: same
Source: openssl
Version: 1.1.1n-0+deb11u3
Depends: libc6 (>= 2.25)
Description: Secure Sockets Layer toolkit - shared libraries
 This package is part of the OpenSSL project's implementation of the SSL and
 TLS cryptographic protocols for secure communication over the Internet.

Package: firefox-esr
Status: install ok installed
Priority: optional
Section: web
Installed-Size: 216789
Maintainer: Maintainers of Mozilla-related packages <team+pkg-mozilla@tracker.debian.org>
Architecture: amd64
Version: 91.4.0esr-1~deb11u1
Depends: libc6 (>= 2.30), libgtk-3-0 (>= 3.14)
Description: Mozilla Firefox web browser - Extended Support Release (ESR)
 Firefox ESR is a powerful, extensible web browser with support for modern
 web application technologies.

Package: openssh-server
Status: install ok installed
Priority: optional
Section: net
Installed-Size: 1489
Maintainer: Debian OpenSSH Maintainers <debian-ssh@lists.debian.org>
Architecture: amd64
Multi-Arch: foreign
Source: openssh
Version: 1:8.4p1-5+deb11u1
Depends: libc6 (>= 2.26), openssh-client (= 1:8.4p1-5+deb11u1)
Description: secure shell (SSH) server, for secure access from remote machines
 This is the portable version of OpenSSH, a free implementation of
 the Secure Shell protocol as specified by the IETF secsh working group.

Package: python3-yaml
Status: install ok installed
Priority: optional
Section: python
Installed-Size: 656
Maintainer: Debian Python Team <team+python@tracker.debian.org>
Architecture: amd64
Source: pyyaml
Version: 5.3.1-5
Depends: python3 (<< 3.10), python3 (>= 3.9~)
Description: YAML parser and emitter for Python3
 Python3-yaml is a complete YAML 1.1 parser and emitter for Python3.

Package: zlib1g
Status: deinstall ok config-files
Priority: optional
Section: libs
Installed-Size: 168
Maintainer: Mark Brown <broonie@debian.org>
Architecture: amd64
Source: zlib
Version: 1:1.2.11.dfsg-2
Description: compression library - runtime
 zlib is a library implementing the deflate compression method found
 in gzip and PKZIP.
"""

OS_RELEASE_DEBIAN = """\
PRETTY_NAME="Debian GNU/Linux 11 (bullseye)"
NAME="Debian GNU/Linux"
VERSION_ID="11"
VERSION="11 (bullseye)"
VERSION_CODENAME=bullseye
ID=debian
HOME_URL="https://www.debian.org/"
SUPPORT_URL="https://www.debian.org/support"
BUG_REPORT_URL="https://bugs.debian.org/"
"""

METADATA_SKYWALKING = """\
Metadata-Version: 2.1
Name: apache-skywalking
Version: 0.5.0
Summary: Python Agent for Apache SkyWalking
Home-page: https://github.com/apache/skywalking-python/
Author: Apache
Author-email: dev@skywalking.apache.org
License: Apache 2.0
Requires-Python: >=3.5

"""

METADATA_YAML = """\
Metadata-Version: 1.1
Name: PyYAML
Version: 5.3.1
Summary: YAML parser and emitter for Python
Home-page: https://github.com/yaml/pyyaml
Author: Kirill Simonov
License: MIT

"""

ALPINE_INSTALLED = """\
C:Q1Y0V7gZx1b8d7LQ9rYQ0XGq8l2Zw=
P:busybox
V:1.30.1-r1
A:aarch64
S:501374
I:962560
T:Size optimized toolbox of many common UNIX utilities
U:https://busybox.net/
L:GPL-2.0-only
o:busybox
m:Natanael Copa <ncopa@alpinelinux.org>
t:1575887512
c:ed7a8f42a6c2e6ac6a0bc8ff4a33ee1b6b0c6e84
D:so:libc.musl-aarch64.so.1
p:/bin/sh cmd:busybox=1.30.1-r1 cmd:sh=1.30.1-r1
F:bin
R:busybox
a:0:0:755
Z:Q1Kh3ewgGS8GNDg4pbSE7xkfqN0Hg=

C:Q1f3a4Y9a3nQ5f7rQ1fWc8m7k2qXg=
P:ansible
V:2.8.5-r0
A:noarch
S:6045321
I:41078784
T:A configuration-management, deployment, task-execution, and multinode orchestration framework
U:https://ansible.com
L:GPL-3.0-or-later
o:ansible
m:Natanael Copa <ncopa@alpinelinux.org>
t:1568801234
c:6b9b4a0a3f7d6e2b8b1c9a6e7d4f3c2b1a0f9e8d
D:python3 py3-yaml py3-paramiko py3-jinja2 py3-cryptography
F:usr/bin
R:ansible
a:0:0:755
Z:Q1mK7bV9uK0u8m7Y2Vq6yX4Jt1u0Q=

"""

OS_RELEASE_ALPINE = """\
NAME="Alpine Linux"
ID=alpine
VERSION_ID=3.11.6
PRETTY_NAME="Alpine Linux v3.11"
HOME_URL="https://alpinelinux.org/"
BUG_REPORT_URL="https://bugs.alpinelinux.org/"
"""

NPM_FORMIDABLE = {
    "name": "formidable",
    "version": "2.1.1",
    "description": "A node.js module for parsing form data, especially file uploads.",
    "license": "MIT",
    "main": "./src/index.js",
}


def _tar(files: dict[str, bytes], dirs: list[str]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for d in dirs:
            info = tarfile.TarInfo(d)
            info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, MTIME
            tf.addfile(info)
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o644, MTIME
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _dirs(files: dict[str, bytes]) -> list[str]:
    out: set[str] = set()
    for name in files:
        parts = name.split("/")[:-1]
        out.update("/".join(parts[: i + 1]) for i in range(len(parts)))
    return sorted(out)


class Layout:
    """An OCI image layout being written: blobs by sha256, then index.json."""

    def __init__(self, root: Path) -> None:
        self.root = root
        (root / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
        (root / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')

    def blob(self, data: bytes, media_type: str) -> dict[str, object]:
        digest = hashlib.sha256(data).hexdigest()
        (self.root / "blobs" / "sha256" / digest).write_bytes(data)
        return {"mediaType": media_type, "digest": f"sha256:{digest}", "size": len(data)}

    def json_blob(self, doc: object, media_type: str) -> dict[str, object]:
        return self.blob(msgspec.json.encode(doc, order="sorted"), media_type)


def _image(
    layout: Layout, files: dict[str, bytes], arch: str, config: dict[str, object]
) -> dict[str, object]:
    tar = _tar(files, _dirs(files))
    gz = gzip.compress(tar, compresslevel=6, mtime=0)
    layer = layout.blob(gz, "application/vnd.oci.image.layer.v1.tar+gzip")
    cfg = {
        "architecture": arch,
        "os": "linux",
        "created": "2024-05-20T00:00:00Z",
        "config": config,
        "rootfs": {"type": "layers", "diff_ids": [f"sha256:{hashlib.sha256(tar).hexdigest()}"]},
        "history": [
            {"created": "2024-05-20T00:00:00Z", "created_by": "/bin/sh -c #(nop) ADD rootfs /"}
        ],
    }
    cfg_desc = layout.json_blob(cfg, "application/vnd.oci.image.config.v1+json")
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": cfg_desc,
        "layers": [layer],
    }
    desc = layout.json_blob(manifest, "application/vnd.oci.image.manifest.v1+json")
    desc["platform"] = {"os": "linux", "architecture": arch}
    return desc


def main(out: Path) -> None:
    """Write the example layout to ``out`` (tag ``latest``: amd64 Debian, arm64 Alpine)."""
    layout = Layout(out)
    debian = {
        "etc/os-release": OS_RELEASE_DEBIAN.encode(),
        "etc/debian_version": b"11.2\n",
        "var/lib/dpkg/status": DEBIAN_STATUS.encode(),
        "var/lib/dpkg/info/python3-yaml.list": (
            b"/.\n/usr\n/usr/lib\n/usr/lib/python3\n/usr/lib/python3/dist-packages\n"
            b"/usr/lib/python3/dist-packages/PyYAML-5.3.1.egg-info\n"
        ),
        "var/lib/dpkg/info/openssh-server.list": b"/.\n/usr\n/usr/sbin\n/usr/sbin/sshd\n",
        "usr/lib/python3/dist-packages/PyYAML-5.3.1.egg-info": METADATA_YAML.encode(),
        "usr/local/lib/python3.9/site-packages/apache_skywalking-0.5.0.dist-info/METADATA": (
            METADATA_SKYWALKING.encode()
        ),
        "app/node_modules/formidable/package.json": msgspec.json.format(
            msgspec.json.encode(NPM_FORMIDABLE), indent=2
        ),
    }
    debian_cfg = {
        "Env": [
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            # AWS's documented example key: a real key format, not a real key.
            "AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        ],
        "ExposedPorts": {"22/tcp": {}, "8080/tcp": {}},
        "Cmd": ["/usr/sbin/sshd", "-D"],
    }
    alpine = {
        "etc/os-release": OS_RELEASE_ALPINE.encode(),
        "etc/alpine-release": b"3.11.6\n",
        "lib/apk/db/installed": ALPINE_INSTALLED.encode(),
    }
    alpine_cfg = {"User": "10001", "Cmd": ["/bin/sh"]}
    manifests = [
        _image(layout, debian, "amd64", debian_cfg),
        _image(layout, alpine, "arm64", alpine_cfg),
    ]
    index = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": manifests,
    }
    index_desc = layout.json_blob(index, "application/vnd.oci.image.index.v1+json")
    index_desc["annotations"] = {"org.opencontainers.image.ref.name": "latest"}
    top = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [index_desc],
    }
    (out / "index.json").write_bytes(msgspec.json.format(msgspec.json.encode(top), indent=2))


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: make-example-image.py OUT_DIR")
    main(Path(sys.argv[1]))
