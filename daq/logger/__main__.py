"""``python -m daq.logger CONFIG``: the logger service (same as ``qupdaq logger CONFIG``)."""

import sys

from daq.logger.cli import logger_main

sys.exit(logger_main())
