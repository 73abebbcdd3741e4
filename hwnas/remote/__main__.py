"""``python -m hwnas.remote``: the device server (see :mod:`hwnas.remote.server`)."""

from hwnas.remote.server import main

raise SystemExit(main())
