"""``python -m audian_async`` is the ``audian-async`` command."""

from audian_async.cli import main

raise SystemExit(main())
