"""`python -m app.cli ...`: the `stowage` command."""

import sys

from app.cli.main import main

sys.exit(main())
