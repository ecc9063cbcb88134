"""``streamsink.errors`` is the one exception hierarchy: every exception class of
streamsink is defined there, under ``StreamsinkError``, and drawn in its docstring."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import streamsink
from streamsink import errors


def _exception_classes() -> dict[str, type[BaseException]]:
    found: dict[str, type[BaseException]] = {}
    for info in pkgutil.walk_packages(streamsink.__path__, "streamsink."):
        if info.name.endswith("__main__"):
            continue  # runs the CLI
        module = importlib.import_module(info.name)
        for name, value in vars(module).items():
            if (
                inspect.isclass(value)
                and issubclass(value, BaseException)
                and value.__module__.startswith("streamsink")
            ):
                found[f"{value.__module__}.{name}"] = value
    return found


def test_every_exception_class_is_defined_in_errors() -> None:
    found = _exception_classes()
    elsewhere = sorted(n for n, c in found.items() if c.__module__ != "streamsink.errors")
    assert elsewhere == []
    assert all(issubclass(c, errors.StreamsinkError) for c in found.values())


def test_the_docstring_draws_every_class() -> None:
    own = [
        name
        for name, value in vars(errors).items()
        if inspect.isclass(value) and issubclass(value, BaseException)
    ]
    doc = errors.__doc__ or ""
    assert [name for name in own if f"+-- {name}" not in doc and name != "StreamsinkError"] == []


def test_moved_classes_stay_importable_where_they_were() -> None:
    from streamsink.api.middleware.encoding import BodyTooLarge
    from streamsink.receiver.decode import UnsupportedMediaType
    from streamsink.sinkhttp.netguard import DestinationRefused
    from streamsink.transform.timeparse import TimeParseError

    assert BodyTooLarge is errors.BodyTooLarge
    assert UnsupportedMediaType is errors.UnsupportedMediaType
    assert DestinationRefused is errors.DestinationRefused
    assert TimeParseError is errors.TimeParseError and issubclass(TimeParseError, ValueError)
