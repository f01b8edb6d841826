"""nginx's configuration as the running master was told to load it, reduced to what the
audit relates: each server's listen addresses and where its requests are passed.

The syntax is nginx's own (words, quoted strings, `;`, `{ }`, `#` comments). `include` is
followed (globs, relative to the main file's directory) except inside the blocks that hold
data rather than directives (map, types, geo, …). A proxy_pass names an upstream block
(its `server` lines are the targets) or an address itself; a target with a variable is
kept as written, so it never matches a concrete socket.
"""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass
from pathlib import Path

from auditor import safeio
from auditor.errors import InputError
from auditor.inventory.interface import NginxServer

MAX_BYTES = 1 << 20
MAX_FILES = 64
DATA_BLOCKS = frozenset({"map", "types", "geo", "split_clients", "charset_map", "match"})
# content handlers that may send a request anywhere but to the proxy_pass targets read here
OTHER_PASSES = (
    "fastcgi_pass", "uwsgi_pass", "scgi_pass", "grpc_pass", "memcached_pass", "js_content",
    "perl", "content_by_lua", "content_by_lua_block", "content_by_lua_file",
)  # fmt: skip


class ConfigError(ValueError):
    """The configuration cannot be read or parsed: nothing about it is known."""


@dataclass(frozen=True)
class Directive:
    name: str
    args: tuple[str, ...]
    block: tuple[Directive, ...] | None  # None: a simple directive ending in ";"


def tokens(text: str) -> list[str]:
    """Words (quotes removed), ";", "{" and "}"; raises ConfigError on an open quote."""
    found: list[str] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c.isspace():
            i += 1
        elif c == "#":
            end = text.find("\n", i)
            i = n if end < 0 else end
        elif c in ";{}":
            found.append(c)
            i += 1
        elif c in "\"'":
            word, i = _quoted(text, i)
            found.append(word)
        else:
            start = i
            while i < n and not text[i].isspace() and text[i] not in ";{}\"'#":
                i += 2 if text[i] == "\\" else 1
            found.append(text[start:i])
    return found


def _quoted(text: str, start: int) -> tuple[str, int]:
    quote, out, i = text[start], [], start + 1
    while i < len(text):
        c = text[i]
        if c == "\\" and i + 1 < len(text):
            out.append(text[i + 1])
            i += 2
        elif c == quote:
            return "".join(out), i + 1
        else:
            out.append(c)
            i += 1
    raise ConfigError("a quoted string is not closed")


def parse(words: list[str], where: str) -> tuple[Directive, ...]:
    directives, rest = _block(words, 0, where, top=True)
    if rest != len(words):
        raise ConfigError(f"{where}: unexpected '}}'")
    return directives


def _block(words: list[str], i: int, where: str, top: bool) -> tuple[tuple[Directive, ...], int]:
    out: list[Directive] = []
    current: list[str] = []
    while i < len(words):
        word = words[i]
        if word == ";":
            if not current:
                raise ConfigError(f"{where}: an empty directive")
            out.append(Directive(current[0], tuple(current[1:]), None))
            current, i = [], i + 1
        elif word == "{":
            if not current:
                raise ConfigError(f"{where}: a block without a name")
            inner, i = _block(words, i + 1, where, top=False)
            out.append(Directive(current[0], tuple(current[1:]), inner))
            current = []
        elif word == "}":
            if top or current:
                raise ConfigError(f"{where}: unexpected '}}'")
            return tuple(out), i + 1
        else:
            current.append(word)
            i += 1
    if current or not top:
        raise ConfigError(f"{where}: the file ends inside a directive or block")
    return tuple(out), i


def load(path: str, extra: str = "") -> tuple[Directive, ...]:
    """The main file (with `extra`, nginx's -g directives, first) and its includes."""
    if not os.path.isabs(path):
        raise ConfigError(f"the configuration path {path!r} is relative")
    budget = [MAX_FILES]
    return parse(tokens(extra), "-g") + _load_file(path, os.path.dirname(path), budget)


def _load_file(path: str, prefix: str, budget: list[int]) -> tuple[Directive, ...]:
    budget[0] -= 1
    if budget[0] < 0:
        raise ConfigError(f"more than {MAX_FILES} configuration files")
    try:
        text = safeio.read_text(Path(path), MAX_BYTES, what="nginx configuration")
    except (OSError, InputError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from exc
    return _expand(parse(tokens(text), path), prefix, budget)


def _expand(items: tuple[Directive, ...], prefix: str, budget: list[int]) -> tuple[Directive, ...]:
    out: list[Directive] = []
    for item in items:
        if item.name == "include" and item.block is None:
            if len(item.args) != 1:
                raise ConfigError(f"include {' '.join(item.args)}: one file or glob expected")
            pattern = os.path.join(prefix, item.args[0])
            matches = sorted(glob.glob(pattern)) if glob.has_magic(pattern) else [pattern]
            for match in matches:
                out += _load_file(match, prefix, budget)
        elif item.block is not None and item.name not in DATA_BLOCKS:
            out.append(Directive(item.name, item.args, _expand(item.block, prefix, budget)))
        else:
            out.append(item)
    return tuple(out)


def _walk(items: tuple[Directive, ...]) -> list[Directive]:
    found: list[Directive] = []
    for item in items:
        found.append(item)
        if item.block is not None and item.name not in DATA_BLOCKS:
            found += _walk(item.block)
    return found


def _upstreams(context: Directive) -> dict[str, tuple[str, ...]]:
    return {
        u.args[0]: tuple(s.args[0] for s in u.block or () if s.name == "server" and s.args)
        for u in context.block or ()
        if u.name == "upstream" and u.args and u.block is not None
    }


def _pass_targets(argument: str, upstreams: dict[str, tuple[str, ...]]) -> tuple[str, ...]:
    """Where proxy_pass ARGUMENT sends requests: an upstream's servers or the address."""
    rest = argument.split("://", 1)[1] if "://" in argument else argument
    if rest.startswith("unix:"):
        return (rest.split(":", 2)[0] + ":" + rest.split(":", 2)[1],)
    name = rest.split("/", 1)[0]
    return upstreams.get(name, (name,))


def _listen(directive: Directive) -> str:
    address = directive.args[0] if directive.args else "*:80"
    return f"*:{address}" if address.isdigit() else address


def servers(config: tuple[Directive, ...]) -> tuple[NginxServer, ...]:
    """Every server of the http and stream blocks: listens and pass targets."""
    found: list[NginxServer] = []
    for context in (d for d in config if d.name in ("http", "stream") and d.block is not None):
        upstreams = _upstreams(context)
        for server in (d for d in context.block or () if d.name == "server" and d.block):
            inner = _walk(server.block or ())
            listens = [_listen(d) for d in inner if d.name == "listen"]
            targets: list[str] = []
            for d in inner:
                if d.name == "proxy_pass" and d.args:
                    targets += _pass_targets(d.args[0], upstreams)
            others = sorted({d.name for d in inner if d.name in OTHER_PASSES})
            found.append(NginxServer(
                context=context.name, listens=tuple(listens or ["*:80"]),
                targets=tuple(targets), other_passes=tuple(others),
            ))  # fmt: skip
    return tuple(found)


def command_line(cmdline: tuple[str, ...]) -> tuple[str, str]:
    """(-c file, -g directives) of an nginx master; the title nginx gives its master
    ("nginx: master process /usr/sbin/nginx -c …", one NUL-padded string) is split into
    words like argv."""
    words = " ".join(cmdline).split()
    path, extra = "/etc/nginx/nginx.conf", []
    for i, word in enumerate(words):
        if word == "-c" and i + 1 < len(words):
            path = words[i + 1]
        elif word == "-g":
            for more in words[i + 1 :]:
                if more.startswith("-"):
                    break
                extra.append(more)
        elif word == "-p":
            raise ConfigError("nginx was started with a prefix (-p): its paths are not read")
    return path, " ".join(extra)
