"""Allow ``python -m code24ctl``."""

from code24ctl.cli import main

if __name__ == "__main__":
    main()
