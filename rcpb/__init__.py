"""rcpb: recurrent vs feed-forward CNN models of early visual cortex.

Subpackages: ``rcpb.data`` (dataset files, preprocessing, splits, simulator),
``rcpb.models`` (CPB/RCPB blocks, feed-forward, recurrent and multi-path models),
``rcpb.accel`` (CPU speed-ups, applied by the trainer), ``rcpb.train`` (objective, three-phase
optimisation of one model, evaluation), ``rcpb.pack`` (many configurations trained at once in
one process, each as alone), ``rcpb.metrics`` (cc_raw, cc_max, cc_norm2), ``rcpb.chains``,
``rcpb.ablation_sets`` and ``rcpb.path_stats`` (chains of convolutions, ablation names, path
statistics), ``rcpb.config`` (reading and checking a workflow config), ``rcpb.grid`` (config
grids -> named training configurations), ``rcpb.process`` (a job's environment and GPU).
"""

from rcpb.errors import RcpbError

__all__ = ["RcpbError"]
__version__ = "0.1.0"
