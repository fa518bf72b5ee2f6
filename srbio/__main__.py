"""Allow ``python -m srbio``."""

from srbio.cli import main

raise SystemExit(main())
