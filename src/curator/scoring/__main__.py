import sys

from curator.scoring.cli import main

sys.exit(main())
