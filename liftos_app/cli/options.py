"""Arguments several commands share; sampler flags are generated from ``ModelOptions``."""

from __future__ import annotations

import argparse
import typing
from datetime import date

from pydantic import BaseModel, ValidationError

from liftos.errors import LiftOSError
from liftos.model.options import ModelOptions


def add_model_options(parser: argparse.ArgumentParser, model: type[BaseModel] = ModelOptions,
                      defaults: dict[str, typing.Any] | None = None) -> None:
    """One flag per field of ``model``: its type, choices, default and description as help."""
    for name, field in model.model_fields.items():
        default = (defaults or {}).get(name, field.default)
        choices = typing.get_args(field.annotation) if typing.get_origin(
            field.annotation) is typing.Literal else None
        kind = None if choices else field.annotation
        parser.add_argument(f"--{name.replace('_', '-')}", type=kind, choices=choices,
                            default=default,
                            help=f"{field.description} (default: %(default)s)")


def model_options(args: argparse.Namespace, model: type[BaseModel] = ModelOptions,
                  **extra: typing.Any) -> typing.Any:
    """The options record from parsed flags; an out-of-range value is a one-line error."""
    values = {name: getattr(args, name) for name in ModelOptions.model_fields}
    try:
        return model(**values, **extra)
    except ValidationError as exc:
        error = exc.errors()[0]
        raise LiftOSError(f"--{error['loc'][0]}: {error['msg'].lower()}, got "
                          f"{error.get('input')!r}") from None


def count(low: int, high: int | None = None):
    """An argparse type: a whole number in ``low..high``, refused with a one-line message."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < low or (high is not None and value > high):
            bounds = f"from {low} to {high}" if high is not None else f">= {low}"
            raise argparse.ArgumentTypeError(f"expected a whole number {bounds}, got {value}")
        return value
    return parse


def add_tenant(parser: argparse.ArgumentParser, data: bool = False) -> None:
    parser.add_argument("--tenant", required=True,
                        help="tenant name (a file in the tenants folder) or a tenant YAML path")
    if data:
        parser.add_argument("--data", default=None,
                            help="data file or folder overriding the tenant's")


def add_window(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--since", type=date.fromisoformat, default=None,
                        help="first day (YYYY-MM-DD); default: resume from the bookmarks")
    parser.add_argument("--until", type=date.fromisoformat, default=None,
                        help="last day (YYYY-MM-DD); default: yesterday in the account's zone")
