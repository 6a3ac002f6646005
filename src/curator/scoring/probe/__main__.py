import sys

from curator.scoring.probe.cli import main

sys.exit(main())
