"""``python -m statefun_codegen``: the command-line front end."""

from statefun_codegen.cli import main

raise SystemExit(main())
