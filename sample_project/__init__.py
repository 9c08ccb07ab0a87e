"""Sample "idea validation" project for mdsessions.

This package is a small, fully offline example of a phased LLM-agent workflow. The
workflow validates a startup idea in seven phases (concept expansion, market research,
niche selection, product strategy, business planning, validation and final synthesis);
the ``mvp`` mode runs phases 1, 2, 3, 6 and 7 and the ``full`` mode runs all seven.

Instead of calling a language model, each agent in :mod:`sample_project.agents` is a pure
function that analyses the idea text (and earlier phases' outputs) with deterministic
text heuristics, so the sample runs without network access and always yields the same
markdown for the same input. Example ideas live in ``sample_project/ideas/``.
"""
