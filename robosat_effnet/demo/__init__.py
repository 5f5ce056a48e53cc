"""The embedded default run (`make demo`): a synthetic town through the whole pipeline, one command at a time.

Modules: `run` (the steps, each an `rs-effnet` command, skipped when fresh), `data` (the demo's configs, tile
split and scores), `sample` (the synthetic town scene, also `rs-effnet sample`) and `overview` (the figure).

    python -m robosat_effnet.demo demo
"""
