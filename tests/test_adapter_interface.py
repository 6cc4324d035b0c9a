"""What a protocol needs from an adapter: a ``typing.Protocol`` it declares, checked when the run is built."""

from __future__ import annotations

import typing
from dataclasses import dataclass

import pytest
from mmadapt import Protocol, UserError, check_adapter_interface, hookimpl
from mmadapt.protocol import interface_members
from mmadapt.testing import run_recipe, tiny_recipe


@typing.runtime_checkable
class Counting(typing.Protocol):
    """An adapter that counts the steps it was shown."""

    #: Steps seen so far.
    steps: int

    def count(self, steps: int) -> None:
        """Add ``steps``."""


class Counter:
    steps = 0

    def count(self, steps: int) -> None:
        self.steps += steps


class NotCallable:
    steps = 0
    count = 3


class CountingProtocol(Protocol):
    adapter_interface = Counting

    def evaluate(self, run):
        return {}


def test_interface_members_are_the_public_methods_and_attributes():
    assert interface_members(Counting) == ["count", "steps"]


def test_an_adapter_with_every_member_passes_and_no_interface_accepts_anything():
    check_adapter_interface(CountingProtocol(None), Counter())
    assert isinstance(Counter(), Counting)
    check_adapter_interface(Protocol(None), object())


def test_the_error_names_the_protocol_the_adapter_and_the_missing_members():
    with pytest.raises(UserError) as raised:
        check_adapter_interface(CountingProtocol(None), object(), "counting", "zeroshot")
    assert str(raised.value) == (
        "protocol counting needs an adapter that counts the steps it was shown: adapter zeroshot (object) "
        "lacks count, steps of Counting"
    )
    with pytest.raises(UserError, match="lacks count of Counting"):
        check_adapter_interface(CountingProtocol(None), NotCallable())


@dataclass
class NoConfig:
    """No keys."""


class CountingPlugin:
    @hookimpl
    def register_protocols(self, register):
        register("counting", CountingProtocol, NoConfig, "needs a counting adapter")


def test_a_run_stops_when_it_is_built_with_an_adapter_the_protocol_cannot_use(tiny_plugin, register_plugin, tmp_path):
    register_plugin(CountingPlugin(), "counting-plugin")
    recipe = tiny_recipe(protocol={"name": "counting"}, adapter={"name": "zeroshot"})
    with pytest.raises(UserError, match="protocol counting needs an adapter that counts the steps it was shown: "
                                        "adapter zeroshot \\(ZeroShot\\) lacks count, steps of Counting"):
        run_recipe(recipe, tmp_path / "run")
