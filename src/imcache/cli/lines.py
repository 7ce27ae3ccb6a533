"""Lines for people and results, without click: the colour setting, and writing a line as
`click.echo` writes it (the hit without click, `fast.py`, says its lines through here; the
commands say theirs through `common.say`, which reads the same setting)."""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, BinaryIO

# Line colours for a person at a terminal: a hit, a run, trouble.
TONES = {"hit": "green", "ran": "yellow", "warning": "yellow", "error": "red"}
_ANSI_CODES = {"green": 32, "yellow": 33, "red": 31}  # click.style's foreground codes
ANSI_CODE = r"\033\[[0-?]*[ -/]*[@-~]"  # what click.echo strips off a non-terminal
_color_setting = "auto"  # the group's --color (or IMCACHE_COLOR, NO_COLOR, imcache.toml)
line_open = [False]  # the tool's last echoed line has no end yet (ToolEcho sets it)


class ToolEcho:
    """The tool's output, passed on to our stderr as it comes; remembers if a line is left open
    (a progress bar, a message without its newline), so that our next line starts on its own."""

    def __init__(self, stream: BinaryIO) -> None:
        self.stream = stream

    def write(self, chunk: bytes) -> int:
        if chunk:
            line_open[0] = not chunk.endswith((b"\n", b"\r"))
        return self.stream.write(chunk)

    def flush(self) -> None:
        self.stream.flush()


def use_color(setting: str) -> None:
    """Set by the group for this process: auto, always or never."""
    global _color_setting
    _color_setting = setting


def person_watching(stream: Any) -> bool:
    """A terminal, colours allowed (NO_COLOR unset), not a dumb one."""
    if os.environ.get("NO_COLOR") or os.environ.get("TERM") == "dumb":
        return False
    return hasattr(stream, "isatty") and stream.isatty()


def on_terminal(stream: Any) -> bool:
    """Colours as asked, and `stream` a terminal: what redraws a line or lays out a table needs
    (in a pipe or a log, even with --color always, those would be garbage: colour only)."""
    return color_on(stream) and hasattr(stream, "isatty") and stream.isatty()


def color_on(stream: Any) -> bool:
    """Colours, spinners and tables on `stream`: 'always', or 'auto' where a person watches."""
    if _color_setting == "always":
        return True
    return _color_setting == "auto" and person_watching(stream)


def people_line(message: str, tone: str | None) -> tuple[str, str | None]:
    """`imcache: message`, and the colour it gets where colours are on (None: plain)."""
    tone = tone or next((t for t in ("error", "warning") if message.startswith(f"{t}:")), None)
    return f"imcache: {message}", None if tone is None else TONES[tone]


def say(message: str, tone: str | None = None) -> None:
    """`common.say` without click: one line for people on stderr, byte for byte the same."""
    stream = sys.stderr
    if line_open[0]:
        write_line(stream, "")
        line_open[0] = False
    line, color = people_line(message, tone)
    if color is not None and color_on(stream):
        stream.write(f"\033[{_ANSI_CODES[color]}m{line}\033[0m\n")  # click.style, color=True
        stream.flush()
        return
    write_line(stream, line)


def echo_line(text: str) -> None:
    """`common.echo_line` without click: a result line, names that are not text as bytes."""
    stream = sys.stdout
    try:
        text.encode(getattr(stream, "encoding", None) or "utf-8")
    except UnicodeEncodeError:
        stream.flush()
        stream.buffer.write(os.fsencode(text) + b"\n")
        stream.buffer.flush()
        return
    write_line(stream, text)


def write_line(stream: Any, text: str) -> None:
    """As `click.echo(text)`: escape codes stripped off anything but a terminal, then flushed."""
    if "\033" in text and not (hasattr(stream, "isatty") and stream.isatty()):
        import re  # a line with escape codes only: most have none

        text = re.sub(ANSI_CODE, "", text)
    stream.write(text + "\n")
    stream.flush()
