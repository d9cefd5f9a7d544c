"""``python -m statefun.serving``: the same as the ``statefun-serve`` command."""

from statefun.serving.cli import main

main()
