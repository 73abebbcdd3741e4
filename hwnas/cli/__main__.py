"""``python -m hwnas.cli``."""

from hwnas.cli import main

main()
