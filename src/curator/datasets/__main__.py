import sys

from curator.datasets.cli import main

sys.exit(main())
