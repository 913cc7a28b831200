"""rcpb: recurrent vs feed-forward CNN models of early visual cortex.

Subpackages: ``rcpb.data`` (dataset files, preprocessing, splits, simulator),
``rcpb.models`` (CPB/RCPB blocks, feed-forward, recurrent and multi-path models),
``rcpb.train`` (three-phase optimisation), ``rcpb.metrics`` (cc_raw, cc_max,
cc_norm2), ``rcpb.chains``, ``rcpb.ablation_sets`` and ``rcpb.path_stats`` (chains of convolutions, ablation names, path statistics), ``rcpb.grid`` (config
grids -> named training configurations).
"""

from rcpb.errors import RcpbError

__all__ = ["RcpbError"]
__version__ = "0.1.0"
