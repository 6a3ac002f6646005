import sys

from curator.evaluation.cli import main

sys.exit(main())
