"""python -m glue_ros.tools.bench: the benchmark, or one of its worker processes."""

import sys

from glue_ros.tools.bench.cli import main

sys.exit(main())
