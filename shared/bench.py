"""``python -m shared.bench``, the documented command, kept where it was before shared/ had subpackages; the code is
``shared.commands.bench``."""

import sys

from shared.commands.bench import main

if __name__ == "__main__":
    sys.exit(main())
