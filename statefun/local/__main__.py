import sys

from statefun.local.cli import main

sys.exit(main())
