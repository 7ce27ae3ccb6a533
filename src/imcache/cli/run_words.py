"""The one grammar of `imcache run`'s words: run options apart from the interface's inputs.

Both the click command (`run_cmd.RunCommand.parse_args`) and the hit without click (`fast.py`)
split the words here, so that they cannot disagree about what a request is. It reads words as
click's parser does for `run` (options anywhere before `--`, `--opt=value` or `--opt value`, the
last `--get` winning, unknown options kept as inputs in their place) and returns None for
anything it is not sure of: click's own parser then takes over and reports the problem with
its usual words. No click here: a hit imports this without it.
"""

from __future__ import annotations

from imcache.core.datatype import datatype

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence

# The run options, as the click command declares them (a test holds the two together).
FLAGS = {
    "--json": "as_json",
    "--force": "force",
    "--dry-run": "dry_run",
    "--symlink": "symlink",
    "--overwrite": "overwrite",
    "--help": "show_help",
}
VALUE = {"--get": "get_name"}  # one value; the last one given wins
REPEATED = {"--export": "exports", "--depends": "depends"}  # one value each time, all kept


@datatype
class RunWords:
    name: str | None  # the first word that is not a run option
    words: tuple[str, ...]  # the rest: the interface's inputs, in order
    flags: frozenset[str]  # the flags given (their parameter names)
    get_name: str | None
    exports: tuple[str, ...]
    depends: tuple[str, ...]
    order: tuple[str, ...]  # parameter names in the order given (click processes them so)

    def params(self) -> dict[str, object]:
        """Every parameter of `run` as the click command receives it."""
        params: dict[str, object] = {"name": self.name, "words": self.words}
        params.update({dest: dest in self.flags for dest in FLAGS.values()})
        return {
            **params,
            "get_name": self.get_name,
            "exports": self.exports,
            "depends": self.depends,
        }


def split_run_words(args: Sequence[str]) -> RunWords | None:
    """`run`'s words split into run options and inputs, or None where click must decide (an
    option's missing value, a value given to a flag)."""
    positional: list[str] = []
    flags: set[str] = set()
    get_name: str | None = None
    repeated: dict[str, list[str]] = {dest: [] for dest in REPEATED.values()}
    order: list[str] = []
    rest = list(args)
    index = 0
    while index < len(rest):
        word = rest[index]
        index += 1
        if word == "--":
            positional += rest[index:]
            break
        option, has_value, value = word.partition("=")
        if word[:1] != "-" or len(word) == 1 or option not in {**FLAGS, **VALUE, **REPEATED}:
            positional.append(word)  # an input, or an unknown option kept in its place
            continue
        if option in FLAGS:
            if has_value:
                return None  # "does not take a value": click says so
            flags.add(FLAGS[option])
            order.append(FLAGS[option])
            continue
        if not has_value:
            if index == len(rest):
                return None  # "requires an argument": click says so
            value = rest[index]  # whatever it looks like, as click takes it
            index += 1
        if option in VALUE:
            get_name = value
            order.append(VALUE[option])
        else:
            repeated[REPEATED[option]].append(value)
            order.append(REPEATED[option])
    name = positional[0] if positional else None
    if name is not None:
        order.append("name")
    order.append("words")
    return RunWords(
        name=name,
        words=tuple(positional[1:]),
        flags=frozenset(flags),
        get_name=get_name,
        exports=tuple(repeated["exports"]),
        depends=tuple(repeated["depends"]),
        order=tuple(order),
    )
