"""``python -m shared.bench``: the benchmark (``shared.bench.main``)."""

import sys

from shared.bench.main import main

sys.exit(main())
