import sys

from trademon.cli import main

sys.exit(main())
