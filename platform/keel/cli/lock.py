"""`keel lock NAME -- COMMAND…`: run a command while holding a lock of the core."""

from __future__ import annotations

import argparse
import math
import os
import sys

import trio

from keel.cli.connection import add_connection_args, open_client, positive
from keel.client import DEFAULT_LOCK_TTL_S
from keel.errors import ConfigError, Unavailable

__all__ = ["TOKEN_ENV", "add_parser"]

TOKEN_ENV = "KEEL_LOCK_TOKEN"  # where the command finds the lock's fencing token
EXIT_CANNOT_RUN = 126  # as shells report a command that exists but cannot run
EXIT_NOT_FOUND = 127  # as shells report a command that does not exist


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "lock", help="run a command while holding a lock",
        description=(
            "Wait for lock NAME, then run COMMAND while holding it, keeping the lock's lease alive. The command "
            f"finds the fencing token (it grows with every holder) in ${TOKEN_ENV}. Exits with the command's "
            "status; if the lock is lost meanwhile, the command is stopped and keel exits 1."
        ),
        usage="keel lock [-h] [--ttl SECONDS] [--wait SECONDS] [connection options] NAME -- COMMAND [ARG ...]",
    )
    parser.add_argument("name", metavar="NAME", help="the lock's name (no '/')")
    parser.add_argument("command", nargs=argparse.REMAINDER, metavar="COMMAND",
                        help="the command and its arguments, after --")
    parser.add_argument("--ttl", type=float, default=DEFAULT_LOCK_TTL_S, metavar="SECONDS",
                        help=f"the lock's lease: how long it outlives a vanished holder (default: {DEFAULT_LOCK_TTL_S:g})")
    parser.add_argument("--wait", type=float, metavar="SECONDS",
                        help="give up (exit 1) if the lock is not acquired within SECONDS (default: wait)")
    add_connection_args(parser)
    parser.set_defaults(run=lambda args: trio.run(_run, *_split(parser, args)))


def _split(parser: argparse.ArgumentParser, args: argparse.Namespace) -> tuple[argparse.Namespace, list[str]]:
    """The options and the command line, wherever the options were given.

    Everything after NAME lands in `command`; options between NAME and `--`
    are parsed again, as if given before NAME.

    Raises:
        ConfigError: no command, or one that starts like an option without a `--` before it.
    """
    rest = args.command
    if "--" in rest:
        cut = rest.index("--")
        if cut > 0:
            args = parser.parse_args([*rest[:cut], args.name, *rest[cut:]])
        command = rest[cut + 1:]
    else:
        command = rest
        if command and command[0].startswith("-"):
            raise ConfigError("COMMAND", f"{command[0]!r} looks like an option: put the command after --")
    if not command:
        raise ConfigError("COMMAND", "missing: give it after --, as in `keel lock NAME -- make deploy`")
    return args, command


async def _run(args: argparse.Namespace, command: list[str]) -> int:
    ttl = positive(args.ttl, "--ttl")
    wait = positive(args.wait, "--wait") if args.wait is not None else math.inf
    async with open_client(args) as c:
        with trio.CancelScope(deadline=trio.current_time() + wait) as waiting:
            async with c.lock(args.name, ttl=ttl) as token:
                waiting.deadline = math.inf  # held: the command may take as long as it takes
                return await _command(command, token)
        raise Unavailable(f"lock {args.name}: not acquired within {wait:g} s")


async def _command(command: list[str], token: int) -> int:
    env = os.environ | {TOKEN_ENV: str(token)}
    try:
        done = await trio.run_process(command, stdin=None, check=False, env=env)
    except FileNotFoundError:
        sys.stderr.write(f"keel lock: {command[0]}: command not found\n")
        return EXIT_NOT_FOUND
    except PermissionError:
        sys.stderr.write(f"keel lock: {command[0]}: permission denied\n")
        return EXIT_CANNOT_RUN
    code = done.returncode
    return 128 - code if code < 0 else code  # killed by a signal: 128 + its number, as shells say
