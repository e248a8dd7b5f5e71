"""`python -m genval.cli`: the `genval` command."""

import sys

from genval.cli import main

sys.exit(main())
