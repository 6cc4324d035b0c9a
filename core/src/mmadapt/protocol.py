"""The Protocol contract: what a run does with its data and adapter."""

from __future__ import annotations

import typing
from typing import TYPE_CHECKING, Any, ClassVar

from .errors import UserError

if TYPE_CHECKING:
    from .data import DataBundle
    from .engine import Run
    from .recipe import Section


class Protocol:
    """Drives one seed of a run. Subclasses override :meth:`run` and usually :meth:`evaluate`.

    ``prepare`` may reshape the data before the adapter is built (base-to-novel keeps the base
    classes, incremental protocols cut tasks); ``evaluate`` is the evaluation part alone, which
    ``adapt eval`` calls on a saved adapter.
    """

    #: What the protocol needs from an adapter beyond :class:`mmadapt.Adapter`: a ``typing.Protocol``
    #: class (``@runtime_checkable``) whose members the adapter must have, e.g. methods telling it when
    #: an incremental task starts; its docstring's first line says what such an adapter is ("An adapter
    #: that ..."), which the error message quotes. None: any adapter. The run checks it when it is built
    #: (:func:`check_adapter_interface`), so a recipe pairing the two wrongly stops before training.
    adapter_interface: ClassVar[type | None] = None

    def __init__(self, config: Any) -> None:
        self.config = config

    def extra_datasets(self) -> dict[str, Section]:
        """Datasets this protocol uses besides the recipe's ``data:`` section, by a name of its own.

        The run prepares each as it prepares ``data:`` (knowledge file, few-shot items sampled with the
        run seed and saved in ``few_shot.json`` under that name, so a resumed or reloaded run gets the
        same ones) and passes them to :meth:`prepare` as ``extra``. The default is none.
        """
        return {}

    def prepare(self, bundle: DataBundle, extra: dict[str, DataBundle] | None = None) -> DataBundle:
        """Return the data the adapter is built for; the default keeps it as it is.

        ``extra`` holds the prepared :meth:`extra_datasets` by name; it is passed only to a protocol
        that names some, so ``prepare(self, bundle)`` serves every other protocol.
        """
        return bundle

    def run(self, run: Run) -> dict[str, float]:
        """Train and/or evaluate; return the headline metrics (``"<split>/<metric>": value``)."""
        return self.evaluate(run)

    def evaluate(self, run: Run) -> dict[str, float]:
        """Evaluate the adapter as it is now."""
        raise NotImplementedError


def interface_members(interface: type) -> list[str]:
    """The public members a ``typing.Protocol`` class declares (methods, properties and annotated attributes),
    its bases' included, sorted."""
    members: set[str] = set()
    for cls in interface.__mro__:
        if cls in (object, typing.Protocol, typing.Generic):
            continue
        members |= set(vars(cls)) | set(getattr(cls, "__annotations__", {}))
    return sorted(name for name in members if not name.startswith("_"))


def check_adapter_interface(
    protocol: Protocol, adapter: Any, protocol_name: str | None = None, adapter_name: str | None = None
) -> None:
    """Raise a ``UserError`` naming the protocol, the adapter and the missing members when ``adapter`` lacks
    what ``protocol.adapter_interface`` declares; do nothing when the protocol declares none.

    A member the interface defines as a method must be callable on the adapter.
    """
    interface = protocol.adapter_interface
    if interface is None:
        return
    missing = []
    for name in interface_members(interface):
        declared = getattr(interface, name, None)
        if not hasattr(adapter, name) or (callable(declared) and not callable(getattr(adapter, name))):
            missing.append(name)
    if missing:
        summary = (interface.__doc__ or "").strip().partition("\n")[0].rstrip(".")
        purpose = summary[:1].lower() + summary[1:] if summary else f"an adapter that follows {interface.__name__}"
        raise UserError(
            f"protocol {protocol_name or type(protocol).__name__} needs {purpose}: adapter "
            f"{adapter_name or type(adapter).__name__} ({type(adapter).__name__}) lacks {', '.join(missing)} "
            f"of {interface.__name__}"
        )
