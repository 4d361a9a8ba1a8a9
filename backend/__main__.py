"""``python -m collab.backend --data-dir D``: the embedded backend (``collab serve``)."""

import sys

from collab.backend.serve import main

sys.exit(main())
