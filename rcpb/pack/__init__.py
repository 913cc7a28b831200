"""Packed training: many configurations per process (and per GPU), each trained as alone.

- :mod:`~rcpb.pack.kinds`: which configurations may share a pack (the one place deciding it).
- :mod:`~rcpb.pack.schedule`: the SPEC 4 schedule of one configuration (phases, early stopping).
- :mod:`~rcpb.pack.engines`: where a pack's tensors live and how a step is computed ("loop":
  one module per slot; "stacked": ``torch.func.vmap`` over stacked parameters).
- :mod:`~rcpb.pack.trainer`: K slots, refilled from a queue as configurations finish.
- :mod:`~rcpb.pack.run`: configurations and output folders in, today's files out.
"""
