"""The error tree drawn in etl/errors.py is the tree the code defines: every subclass of
VeeamEtlError, in every module of etl, is drawn under its parent, and every drawn class exists
there."""

from __future__ import annotations

import importlib
import pkgutil
import re

import pytest

import etl
from etl import errors
from etl.errors import VeeamEtlError

DRAWN = re.compile(r"^    (?P<indent>(?:[│ ]   )*)(?:[├└]── )?(?P<name>\w+)")


def _import_every_module() -> None:
    """Every module of etl, so that a subclass defined anywhere is known to __subclasses__()."""
    for module in pkgutil.walk_packages(etl.__path__, "etl."):
        if module.name.startswith("etl.simulator") or module.name.startswith("etl.migrations"):
            continue  # test equipment and Alembic's scripts: no errors of the product
        try:
            importlib.import_module(module.name)
        except ImportError as exc:  # an optional extra that is not installed (dagster)
            if "dagster" not in str(exc):
                raise


def _drawn(root: str) -> set[tuple[str, str]]:
    """(class, parent) pairs of the drawing in errors.py's docstring under `root`."""
    lines = (errors.__doc__ or "").splitlines()
    start = lines.index(f"    {root}")
    pairs: set[tuple[str, str]] = set()
    parents = [root]
    for line in lines[start + 1 :]:
        match = DRAWN.match(line)
        if not line.strip() or match is None:
            break
        depth = len(match["indent"]) // 4 + 1
        del parents[depth:]
        pairs.add((match["name"], parents[-1]))
        parents.append(match["name"])
    return pairs


def _defined(root: type) -> set[tuple[str, str]]:
    pairs: set[tuple[str, str]] = set()
    for cls in root.__subclasses__():
        pairs.add((cls.__name__, root.__name__))
        pairs |= _defined(cls)
    return pairs


def test_the_drawn_tree_is_every_error_class():
    _import_every_module()
    drawn = _drawn("VeeamEtlError")
    assert len(drawn) > 10  # the drawing was found and read
    assert drawn == _defined(VeeamEtlError)
    assert _drawn("KeyboardInterrupt") == {("Interrupted", "KeyboardInterrupt")}


@pytest.mark.parametrize("name", [n for n, _ in _defined(VeeamEtlError)])
def test_every_error_lives_in_errors_and_has_an_exit_code(name):
    cls = getattr(errors, name)
    assert cls.exit_code in (1, 2, 75)
    assert cls.__module__ == "etl.errors"


def test_a_failed_migration_is_not_a_refused_batch():
    assert not issubclass(errors.MigrationError, errors.LoadError)
    assert errors.MigrationError.exit_code == 1
    assert errors.EstateError(["a", "b"]).exit_code == 2 and str(errors.EstateError(["a", "b"])) == "a\nb"
