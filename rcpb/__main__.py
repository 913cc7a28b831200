"""``python -m rcpb ...`` is the same as the ``rcpb`` command."""

import sys

from rcpb.cli import main

sys.exit(main())
