"""Facts from registries and images. The crawler states facts and never judges them:
``regsweep.matcher`` does that (nothing here imports ``matcher.checks`` or ``matcher.judge``;
``tests/test_architecture.py`` holds it to that).

* ``registry``, ``auth``: the OCI distribution client (tokens, retries, rate limits).
* ``refs``: what users type to name images and registries, parsed.
* ``oci``: OCI and Docker documents (manifests, indexes, configs, media types, digests,
  platforms).
* ``walk``: the one walk from a manifest or index down to platform images, over any
  ``BlobSource`` (a layout, an archive, a registry).
* ``sources``: local images, OCI layouts and ``docker save`` archives.
* ``layers``: one layer streamed once (decompressed, digest- and diff_id-checked, its tar
  walked) into ``layers.LayerFacts``; ``merge`` for overlay semantics.
* ``analyzers/``: what each format's files mean (OS, dpkg, apk, rpm, language packages).
* ``analyze``: a platform image's layers → ``matcher.facts.ImageFacts``.
* ``images``: registry references → their platform images' facts, each distinct layer
  fetched and analysed once (``images.Crawler``).
* ``crawl``: a whole registry (``RegistryCrawl``) and single references (``scan_refs``).
* ``state``: the LMDB state store that makes re-crawls incremental and crawls resumable.

A new distro or package format is an analyzer in ``analyzers/`` listed in
``analyze.default_analyzers``.
"""
