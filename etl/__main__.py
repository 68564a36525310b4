"""`python -m etl` is `veeam-etl`."""

from .cli import main

main()
