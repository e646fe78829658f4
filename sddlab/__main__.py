"""`python -m sddlab` runs the command line."""

from sddlab.app.cli import main

if __name__ == "__main__":
    main()
