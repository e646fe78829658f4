"""`python -m sddlab` runs the command line."""

from sddlab.app.cli import main

main()
