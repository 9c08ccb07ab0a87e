"""Models: the typed shapes of every document and the session state machine.

:mod:`.schema` holds the pydantic models of the manifest, checkpoint, agent output, prompt
and feedback (seed 003 formats); :mod:`.workflow` the workflow definitions (phases, agents,
review gates). Pure data and pure functions: nothing here touches the disk or git.

Imports: :mod:`mdsessions.errors` only.
"""
