"""`python -m monalisa` runs the CLI."""

import sys

from monalisa.cli import main

sys.exit(main())
