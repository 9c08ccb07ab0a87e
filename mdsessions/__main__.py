"""``python -m mdsessions``: the command line."""

from mdsessions.cli import main

if __name__ == "__main__":
    main()
