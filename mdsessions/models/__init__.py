"""Models: the typed shapes of every document and the session state machine.

:mod:`.schema` holds the pydantic models of the manifest, checkpoint, agent output, prompt
and feedback (seed 003 formats); :mod:`.workflow` the workflow definitions (phases, agents,
review gates); :mod:`.state` the session state machine: how the phase table changes when a
phase's output or checkpoint is saved or a reviewer decides, and the session status,
current phase and totals derived from it. Pure data and pure functions: nothing here
touches the disk or git.

Imports: :mod:`mdsessions.errors` only.
"""
