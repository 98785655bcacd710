"""``python -m agent.cli``: the same as the ``loyalty-agent`` console script."""
import sys

from agent.cli import main

sys.exit(main())
