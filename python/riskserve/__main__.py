"""`python -m riskserve ...`: the same as the `riskserve` command."""

import sys

from riskserve._cli import main

sys.exit(main())
