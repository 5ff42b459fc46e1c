"""Library code for the Best-of-Both-Worlds visual dialog pipeline.

Nothing in this package knows about DVC or the command line: stages in ``stages/`` parse
options and params, then call these functions with plain arguments or config dataclasses.
"""
