import sys

from curator.selection.cli import main

sys.exit(main())
