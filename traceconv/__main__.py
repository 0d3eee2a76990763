import sys

from traceconv.cli import main

sys.exit(main())
