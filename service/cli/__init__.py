"""The ``decroche`` command: the parser (``main``) and one module per command group.

Part of the composition root: it may import every package, the campaigns included."""
