"""``python -m shared.compare``, the documented command, kept where it was before shared/ had subpackages; the code is
``shared.commands.compare``."""

import sys

from shared.commands.compare import main

if __name__ == "__main__":
    sys.exit(main())
