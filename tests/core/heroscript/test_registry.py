"""The actor registry: metadata from type hints, binding, errors and suggestions."""

from __future__ import annotations

from datetime import timedelta

import pytest

from core.heroscript import parser
from core.heroscript.actors.registry import ActorRegistry
from core.heroscript.context import ActionContext
from core.heroscript.errors import ActionError
from core.heroscript.params import Percent
from core.heroscript.validate import validate


class Greeter:
    """Says hello."""

    def hello(self, name: str, times: int = 1, loud: bool = False) -> str:
        """Greet someone.

        Args:
            name: who.
        """
        text = " ".join(["hello " + name] * times)
        return text.upper() if loud else text

    async def wait(self, delay: timedelta, share: Percent | None = None) -> float:
        """Return the delay in seconds."""
        return delay.total_seconds() * (share or 1)

    def tags(self, items: list[int], ctx: ActionContext) -> list[int]:
        """Sum nothing, return items."""
        return items

    def words(self, *args: str) -> list[str]:
        """Return the positional args."""
        return list(args)

    def _hidden(self) -> None:
        """Not an action."""


@pytest.fixture
def registry() -> ActorRegistry:
    reg = ActorRegistry()
    reg.load_builtins()
    reg.register("greeter", Greeter)
    return reg


def test_metadata_from_type_hints(registry: ActorRegistry) -> None:
    actor = next(a for a in registry.actors() if a.name == "greeter")
    assert actor.doc == "Says hello."
    assert sorted(actor.actions) == ["hello", "tags", "wait", "words"]
    hello = actor.actions["hello"]
    assert [(p.name, p.type_name, p.required) for p in hello.params] == [
        ("name", "str", True),
        ("times", "int", False),
        ("loud", "bool", False),
    ]
    assert hello.summary == "Greet someone."
    assert not hello.is_async
    wait = actor.actions["wait"]
    assert wait.is_async
    assert [p.type_name for p in wait.params] == ["duration", "percent | None"]
    assert [p.name for p in actor.actions["tags"].params] == ["items"]


def test_bind_converts_values(registry: ActorRegistry) -> None:
    action = parser.parse("!!greeter.hello name:Bob times:2 loud:yes")[0]
    bound = registry.bind(action)
    assert bound.kwargs == {"name": "Bob", "times": 2, "loud": True}
    action = parser.parse("!!greeter.wait delay:1m30s share:50%")[0]
    assert registry.bind(action).kwargs == {"delay": timedelta(seconds=90), "share": 0.5}
    assert registry.bind(parser.parse("!!greeter.tags items:1,2,3")[0]).kwargs == {
        "items": [1, 2, 3]
    }


def test_ill_typed_parameter_names_action_param_and_line(registry: ActorRegistry) -> None:
    action = parser.parse("!!core.echo\n!!fake.sleep\n    seconds:abc\n")[1]
    with pytest.raises(ActionError) as info:
        registry.bind(action)
    assert str(info.value) == "line 3: fake.sleep: parameter 'seconds' expects float, got 'abc'"
    assert (info.value.param, info.value.col) == ("seconds", 5)


def test_missing_parameter(registry: ActorRegistry) -> None:
    with pytest.raises(ActionError, match=r"line 1: fake\.sleep: missing parameter 'seconds'"):
        registry.bind(parser.parse("!!fake.sleep")[0])


def test_unknown_parameter_suggests(registry: ActorRegistry) -> None:
    with pytest.raises(ActionError) as info:
        registry.bind(parser.parse("!!greeter.hello name:x tims:3")[0])
    assert "unknown parameter 'tims'" in str(info.value)
    assert info.value.suggestion == "times"


def test_unknown_action_names_the_closest(registry: ActorRegistry) -> None:
    with pytest.raises(ActionError) as info:
        registry.bind(parser.parse("\n!!fake.retrun_success message:x")[0])
    assert str(info.value) == (
        "line 2: fake.retrun_success: unknown action; did you mean 'fake.return_success'?"
    )
    with pytest.raises(ActionError) as info:
        registry.bind(parser.parse("!!gretter.hello name:x")[0])
    assert info.value.suggestion == "greeter.hello"


def test_positional_args(registry: ActorRegistry) -> None:
    assert registry.bind(parser.parse("!!greeter.words a b")[0]).args == ("a", "b")
    with pytest.raises(ActionError, match="takes no positional args"):
        registry.bind(parser.parse("!!greeter.hello stray name:x")[0])


def test_validate_lists_every_problem(registry: ActorRegistry) -> None:
    text = "!!fake.sleep seconds:x\n!!nope.x\n!!a.b c-d:1\n!!greeter.hello name:ok\n"
    found = [(d.line, d.col) for d in validate(text, registry)]
    assert found == [(1, 14), (2, 1), (3, 8)]
    assert validate("!!fake.sleep seconds:x") == []


def test_template_parses_and_names_params(registry: ActorRegistry) -> None:
    text = registry.template("greeter", "hello")
    assert text.startswith("!!greeter.hello\n    name:'' // str, required\n")
    assert parser.parse(text)[0].params.values == {"name": "", "times": "1", "loud": "false"}


def test_register_instance_and_settings(tmp_path: object) -> None:
    class WithSettings:
        def __init__(self, settings: object) -> None:
            self.settings = settings

        def show(self) -> str:
            return type(self.settings).__name__

    reg = ActorRegistry()
    reg.register("s", WithSettings)
    reg.register("g", Greeter())
    assert reg.lookup("s", "show").func() == "ActorsSettings"
    assert reg.lookup("g", "hello").func("x") == "hello x"


def test_load_modules_reports_failures() -> None:
    reg = ActorRegistry()
    loaded = reg.load_modules(
        [
            "tests.core.heroscript.sample_actors",
            "tests.core.heroscript.sample_actors:Counter",
            "no_such_module_xyz",
        ]
    )
    assert loaded == ["sample", "counter"]
    assert reg.lookup("sample", "ping").func() == "pong"
    assert reg.load_errors
    assert "no_such_module_xyz" in reg.load_errors[0]


def test_shell_is_off_unless_enabled() -> None:
    from core.heroscript.settings import ActorsSettings

    assert "shell.run" not in ActorRegistry.from_settings(plugins=False).methods()
    enabled = ActorRegistry.from_settings(ActorsSettings(enable_shell=True), plugins=False)
    assert "shell.run" in enabled.methods()
