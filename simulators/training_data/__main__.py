"""``python -m simulators.training_data merge|validate DIR``: see :mod:`.manifest`."""

import sys

from simulators.training_data.manifest import main

sys.exit(main())
