"""gwbench: what one AI compute node really delivers, and what a gigawatt of it would."""

__version__ = "0.1.0"
