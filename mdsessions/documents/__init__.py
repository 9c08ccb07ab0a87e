"""Documents: markdown with YAML frontmatter, parsed, validated and rendered.

:mod:`.frontmatter` splits, validates and dumps documents (``loads``/``dumps`` in the shape
of ``json``; the frontmatter through python-frontmatter's handler interface);
:mod:`.templates` is the one Jinja environment factory and the renderer; :mod:`.kinds` maps
each document kind to its model; :mod:`.yaml` is the strict YAML reader and the
deterministic emitter.

Imports: :mod:`mdsessions.models`, :mod:`mdsessions.errors`.
"""
