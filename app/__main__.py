"""python -m procscope: the same as the `procscope` command."""

from procscope.cli import main

if __name__ == "__main__":
    main()
