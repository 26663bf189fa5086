"""core.api.lazy: a package's names load from their modules on first use, and only then."""

from __future__ import annotations

import subprocess
import sys

import pytest

import core.api


def test_a_lazy_name_loads_its_module_on_first_use_only() -> None:
    code = (
        "import sys, core.api\n"
        "before = 'core.api.engine_api' in sys.modules\n"
        "engine_api = core.api.EngineAPI\n"
        "print(before, 'core.api.engine_api' in sys.modules, 'EngineAPI' in vars(core.api))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    # Once found, the name is a plain attribute of the package.
    assert result.stdout.split() == ["False", "True", "True"]


def test_an_unknown_name_is_an_attribute_error_naming_the_package() -> None:
    with pytest.raises(AttributeError) as info:
        _ = core.api.nope
    assert str(info.value) == "module 'core.api' has no attribute 'nope'"
    assert not hasattr(core.api, "_nope")
