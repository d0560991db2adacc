""".NET ``*.deps.json`` → NuGet packages.

No .NET SDK is packaged in Debian, so the fixture is a deps.json in the exact shape the SDK's
``dotnet publish`` writes (runtimeTarget, compilationOptions, targets, libraries keyed
``Name/Version`` with ``type`` package/project/reference, sha512 and path for packages).
"""

from __future__ import annotations

from regsweep.crawler.analyzers.dotnet import SIZE_CAP, DotnetDepsAnalyzer
from regsweep.crawler.analyzers.interface import AnalyzerResult, Context, LayerFile

LAYER = "sha256:" + "56" * 32
PATH = "app/MyApp.deps.json"
DEPS_JSON = b"""{
  "runtimeTarget": {
    "name": ".NETCoreApp,Version=v8.0",
    "signature": ""
  },
  "compilationOptions": {},
  "targets": {
    ".NETCoreApp,Version=v8.0": {
      "MyApp/1.0.0": {
        "dependencies": {
          "Newtonsoft.Json": "13.0.1",
          "System.Text.Encodings.Web": "4.7.1",
          "MyLib": "1.0.0"
        },
        "runtime": {
          "MyApp.dll": {}
        }
      },
      "Newtonsoft.Json/13.0.1": {
        "runtime": {
          "lib/netstandard2.0/Newtonsoft.Json.dll": {
            "assemblyVersion": "13.0.0.0",
            "fileVersion": "13.0.1.25517"
          }
        }
      },
      "System.Text.Encodings.Web/4.7.1": {},
      "MyLib/1.0.0": {
        "runtime": {
          "MyLib.dll": {}
        }
      }
    }
  },
  "libraries": {
    "MyApp/1.0.0": {
      "type": "project",
      "serviceable": false,
      "sha512": ""
    },
    "Newtonsoft.Json/13.0.1": {
      "type": "package",
      "serviceable": true,
      "sha512": "sha512-ppPFpBcvxdsfUonNcvITKqLl3bqxWbDCZIzDWHzjpdAHRFfZe0Dw9HmA0+za1==",
      "path": "newtonsoft.json/13.0.1",
      "hashPath": "newtonsoft.json.13.0.1.nupkg.sha512"
    },
    "System.Text.Encodings.Web/4.7.1": {
      "type": "package",
      "serviceable": true,
      "sha512": "sha512-abc==",
      "path": "system.text.encodings.web/4.7.1",
      "hashPath": "system.text.encodings.web.4.7.1.nupkg.sha512"
    },
    "MyLib/1.0.0": {
      "type": "project",
      "serviceable": false,
      "sha512": ""
    }
  }
}
"""


def _analyze(files: dict[str, bytes], ctx: Context | None = None) -> AnalyzerResult:
    lf = {p: LayerFile(path=p, data=d, layer=LAYER) for p, d in files.items()}
    return DotnetDepsAnalyzer().analyze(lf, ctx or Context())


def test_package_libraries_only() -> None:
    """``package`` libraries are reported (name as written), projects are not; type nuget,
    ecosystem NuGet, purl, layer, path, owner."""
    res = _analyze({PATH: DEPS_JSON}, Context(owners={PATH: "myapp"}))
    assert res.notes == []
    assert [(p.name, p.version) for p in res.packages] == [
        ("Newtonsoft.Json", "13.0.1"),
        ("System.Text.Encodings.Web", "4.7.1"),
    ]
    p = res.packages[0]
    assert (p.type, p.ecosystem, p.purl) == ("nuget", "NuGet", "pkg:nuget/Newtonsoft.Json@13.0.1")
    assert (p.layer, p.path, p.owner) == (LAYER, PATH, "myapp")


def test_bad_files_are_notes() -> None:
    """Garbage, wrong shapes, a malformed library key and a truncated file give notes."""
    raw = {
        "a.deps.json": b"\xff\xfe not json",
        "b.deps.json": b'{"libraries": []}',
        "c.deps.json": (
            b'{"libraries": {"NoVersion": {"type": "package"}, "X/1.0": {"type": "package"}}}'
        ),
    }
    files = {p: LayerFile(path=p, data=d, layer=LAYER) for p, d in raw.items()}
    files["d.deps.json"] = LayerFile(path="d.deps.json", data=b"{", layer=LAYER, truncated=True)
    res = DotnetDepsAnalyzer().analyze(files, Context())
    assert [(p.name, p.version) for p in res.packages] == [("X", "1.0")]
    assert sorted(n[0] for n in res.notes) == ["a", "b", "c", "d"]


def test_deps_json_without_libraries_is_empty() -> None:
    """A deps.json with no ``libraries`` object (hand-trimmed) is simply empty."""
    res = _analyze({PATH: b'{"runtimeTarget": {"name": "x"}}'})
    assert res.packages == [] and res.notes == []


def test_wants_deps_json_only() -> None:
    """Any ``*.deps.json``; not runtimeconfig or other JSON."""
    az = DotnetDepsAnalyzer()
    assert az.wants(PATH) == SIZE_CAP
    assert (
        az.wants(
            "usr/share/dotnet/shared/Microsoft.NETCore.App/8.0.0/Microsoft.NETCore.App.deps.json"
        )
        == SIZE_CAP
    )
    assert az.wants("app/MyApp.runtimeconfig.json") is None
    assert az.wants("app/deps.json.bak") is None
