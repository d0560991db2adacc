"""Facts from registries and images: registry client, sources, layer streaming, analyzers.

The crawler states facts and never judges them; ``regsweep.matcher`` does that.
"""
