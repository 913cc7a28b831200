"""One module per ``rcpb`` command; see :mod:`rcpb.cli`."""
