"""``python -m corpuskit.cli``: the same entry point as the ``corpuskit`` console script."""

from corpuskit.cli import main

if __name__ == "__main__":
    main()
