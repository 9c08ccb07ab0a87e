"""Documents: markdown with YAML frontmatter, parsed, validated and rendered.

:mod:`.frontmatter` splits, validates and dumps documents (python-frontmatter's
``loads``/``dumps`` shape) and owns the one Jinja environment factory; :mod:`.yaml` is the
strict, deterministic YAML reader and emitter.

Imports: :mod:`mdsessions.models`, :mod:`mdsessions.errors`.
"""
