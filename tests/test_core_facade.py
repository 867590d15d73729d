import importlib
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

import core

ROOT = Path(core.__file__).resolve().parents[1]


def test_all_is_sorted_and_each_name_resolves_to_its_module():
    assert core.__all__ == sorted(core.__all__)
    for name in core.__all__:
        value = getattr(core, name)
        module = importlib.import_module(f"core.{core._HOME[name]}")
        assert value is getattr(module, name) and name in module.__all__


def test_the_facade_is_exactly_all_and_dir_lists_it():
    assert set(core._HOME) == set(core.__all__)
    assert set(core.__all__) <= set(dir(core))


def test_no_facade_name_is_a_submodule():
    """A facade name equal to a submodule would mean one thing before that submodule is imported
    and the other after it (importing a submodule sets the package's attribute)."""
    submodules = {m.name for m in pkgutil.iter_modules(core.__path__)}
    assert "architecture" in submodules and not submodules & set(core.__all__)
    code = "import core, importlib; print(hasattr(core, 'architecture'), importlib.import_module('core.architecture'))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT).stdout
    assert out.startswith("False <module 'core.architecture'")


def test_import_core_imports_no_pymc_pytensor_or_jax():
    """``import core`` runs before every ``import core.<submodule>``, the dashboard's included."""
    heavy = ("pymc", "pytensor", "jax")
    code = f"import core, sys; print(sorted(m for m in {heavy!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT).stdout
    assert out.strip() == "[]"


def test_an_unknown_name_raises_attribute_error_naming_it_and_where_to_look():
    with pytest.raises(AttributeError, match=r"module 'core' has no attribute 'no_such_name'; its facade is "
                                             r"core.__all__, and other names are imported from their submodule"):
        core.no_such_name  # noqa: B018
    assert not hasattr(core, "__wrapped__")  # introspection (inspect, doctest) sees a plain module
