import sys

from curator.evaluation.efficacy.cli import main

sys.exit(main())
