"""``python -m napari_cpadv.cli``: the ``cpadv`` command."""

import sys

from napari_cpadv.cli import main

sys.exit(main())
