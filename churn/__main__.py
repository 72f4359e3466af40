"""`python -m churn ...` runs the CLI."""

import sys

from churn.cli import main

sys.exit(main())
