"""Event-based data sets for spikeloc's networks.

``spikeloc.datasets.nmnist``: the N-MNIST reader (binary event files of Orchard et al. 2015,
as used by seed 003). It needs only NumPy and does not load the compiled extension.
"""

from . import nmnist

__all__ = ["nmnist"]
