"""``python -m advisor``: the same command as ``advisor``."""

from advisor.cli import main

if __name__ == "__main__":
    main()
