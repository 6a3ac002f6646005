import sys

from curator.training.cli import main

sys.exit(main())
