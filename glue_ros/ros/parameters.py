"""The node's parameters, declared from glue_ros.settings: descriptors, ranges, read-only.

A parameter that may change while the node runs (``Setting.live``) is declared writable and
checked by the node's on-set callback (:func:`check_changes`); the others are read-only, so
``ros2 param set`` on them fails with a reason instead of reporting a success that changes
nothing.
"""

from __future__ import annotations

import array
from collections.abc import Sequence
from typing import TYPE_CHECKING

from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
from rclpy.exceptions import InvalidParameterTypeException, InvalidParameterValueException
from rclpy.node import Node
from rclpy.parameter import Parameter

from glue_ros import settings
from glue_ros.core.errors import ParameterError

if TYPE_CHECKING:  # the node imports this module
    from glue_ros.ros.matcher_node import MatcherNode

INT_LIMIT = 2**31 - 1


def descriptor(setting: settings.Setting) -> ParameterDescriptor:
    """The ParameterDescriptor of one setting: description, choices, range, read-only."""
    text = setting.description
    if setting.choices:
        text += f' (one of: {", ".join(map(str, setting.choices))})'
    text += '; changes live' if setting.live else '; read-only: set it at start-up'
    d = ParameterDescriptor(description=text, read_only=not setting.live)
    if setting.kind is float and (setting.low is not None or setting.high is not None):
        d.floating_point_range = [
            FloatingPointRange(
                from_value=float(setting.low if setting.low is not None else -1e300),
                to_value=float(setting.high if setting.high is not None else 1e300),
                step=0.0,
            )
        ]
    elif setting.kind is int and (setting.low is not None or setting.high is not None):
        d.integer_range = [
            IntegerRange(
                from_value=int(setting.low if setting.low is not None else -INT_LIMIT),
                to_value=int(setting.high if setting.high is not None else INT_LIMIT),
                step=0,
            )
        ]
    return d


def plain(value: object) -> object:
    """A parameter value as the schema holds it: arrays (rclpy gives array.array) as lists."""
    return list(value) if isinstance(value, (tuple, list, array.array)) else value


def declare(node: Node) -> dict:
    """Declare every setting on `node`; the values given at start-up, unchecked across names.

    A start-up value outside its range or of the wrong type raises ParameterError naming it.
    """
    values = {}
    for name, setting in settings.SETTINGS.items():
        try:
            node.declare_parameter(name, setting.default, descriptor(setting))
        except (InvalidParameterValueException, InvalidParameterTypeException) as exc:
            raise ParameterError(f"parameter '{name}' rejected: {exc}") from None
        values[name] = plain(node.get_parameter(name).value)
    return values


def read(node: Node) -> dict:
    """The current values, checked together (ParameterError names the first bad one)."""
    values = {name: plain(node.get_parameter(name).value) for name in settings.SETTINGS}
    try:
        settings.validate(values)
    except ValueError as exc:
        raise ParameterError(str(exc)) from None
    return values


def check_changes(current: dict, changes: dict) -> str | None:
    """Why `changes` (name -> value) cannot be applied on top of `current`, or None.

    Read-only parameters and ranges never get here: rclpy applies the descriptors first.
    """
    known = {k: v for k, v in changes.items() if k in settings.SETTINGS}
    try:
        settings.validate({**current, **known})
    except ValueError as exc:
        return str(exc)
    return None


def apply_live_changes(node: MatcherNode, changed: Sequence[Parameter]) -> str | None:
    """Check a node's live parameter changes together and apply them; the reason if refused.

    The matcher and the front-end are retuned while no inference runs (node.inference).
    """
    changes = {p.name: plain(p.value) for p in changed}
    reason = check_changes(node.params, changes)
    if reason:
        return reason
    params = {**node.params, **{k: v for k, v in changes.items() if k in settings.SETTINGS}}
    with node.inference:
        if node.matcher is not None:
            try:
                node.matcher.retune(settings.matcher_config(params))
            except ValueError as exc:
                return str(exc)
            node.frontend.retune(settings.frontend_config(params))
        if node.sync is not None:
            node.sync.slop_ns = round(params['sync_slop'] * 1e9)
        node.params = params
    node.get_logger().info(f'parameters changed: {changes}')
    return None


__all__ = ['descriptor', 'plain', 'declare', 'read', 'check_changes', 'apply_live_changes']
