"""`python -m etl` is `veeam-etl`."""

from .cli import main

if __name__ == "__main__":
    main()
