"""Every option of every command says what it does, and its default where it has one."""

from __future__ import annotations

import argparse

import pytest

from harness.cli import build_parser

FLAGS = (argparse._StoreTrueAction, argparse._StoreFalseAction, argparse._HelpAction, argparse._VersionAction)


def _subcommands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(sub.choices)


@pytest.mark.parametrize("name", sorted(_subcommands()))
def test_every_option_has_help_and_shows_its_default(name):
    missing = []
    for action in _subcommands()[name]._actions:
        if isinstance(action, (argparse._HelpAction, argparse._VersionAction)):
            continue
        text = (action.help or "").lower()
        has_default = action.default not in (None, False, [], argparse.SUPPRESS) and not isinstance(action, FLAGS)
        if not text or (has_default and action.option_strings and "default" not in text):
            missing.append(f"{'/'.join(action.option_strings) or action.dest}: {action.help!r}")
    assert not missing, f"gwbench {name}: " + "; ".join(missing)


def test_the_checker_sees_a_bare_option():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rate", type=float, default=2.0)
    (bare,) = [a for a in parser._actions if a.dest == "rate"]
    assert bare.help is None and bare.default == 2.0  # what the test above refuses
