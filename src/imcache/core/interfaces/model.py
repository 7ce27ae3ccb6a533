"""The typed, validated form of a Boutiques descriptor that the rest of imcache works with."""

from __future__ import annotations

from imcache.core.datatype import datatype, field

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Literal, TypeAlias

InputType: TypeAlias = 'Literal["File", "String", "Number", "Flag", "Sub"]'
# `imcache run`'s own options; an input of the same name is reached as `--input-NAME`.
RUN_OPTIONS = frozenset(
    {"json", "get", "force", "dry-run", "help", "export", "symlink", "overwrite"}
)


@datatype
class FileArg:
    """A File input as given (`given`) and as the tool will see it (`path`, absolute)."""

    given: str
    path: str


@datatype
class SubArg:
    """The value of a Styx sub-command input: which variant, and that variant's own values."""

    variant: str
    values: dict[str, Value]


Scalar: TypeAlias = "str | int | float | bool | FileArg | SubArg"
Value: TypeAlias = "Scalar | list[Scalar]"
Values: TypeAlias = "dict[str, Value]"


@datatype
class InputSpec:
    id: str
    name: str
    type: InputType
    value_key: str
    description: str = ""
    flag: str | None = None
    flag_separator: str = " "
    optional: bool = False
    is_list: bool = False
    list_separator: str = " "
    min_entries: int | None = None
    max_entries: int | None = None
    integer: bool = False
    minimum: float | None = None
    maximum: float | None = None
    exclusive_minimum: bool = False
    exclusive_maximum: bool = False
    choices: tuple[str | int | float, ...] | None = None
    default: object = None
    requires: tuple[str, ...] = ()
    disables: tuple[str, ...] = ()
    value_requires: dict[str, tuple[str, ...]] = field(default_factory=dict)
    value_disables: dict[str, tuple[str, ...]] = field(default_factory=dict)
    variants: tuple[Body, ...] = ()  # Styx sub-command: the possible shapes of the value

    def number_problem(self, number: int | float) -> str:
        """What is wrong with a number for this input ("" if nothing): one rule for the
        definition's own default and for the user's value."""
        if self.integer and not isinstance(number, int):
            return "must be a whole number"
        low, high = self.minimum, self.maximum
        if low is not None and (number < low or (self.exclusive_minimum and number == low)):
            return f"must be {'>' if self.exclusive_minimum else '>='} {low:g}"
        if high is not None and (number > high or (self.exclusive_maximum and number == high)):
            return f"must be {'<' if self.exclusive_maximum else '<='} {high:g}"
        return ""

    @property
    def option(self) -> str:
        """The command-line option of this input: `in_files` -> `--in-files`."""
        dashed = self.id.replace("_", "-")
        return f"--input-{dashed}" if dashed in RUN_OPTIONS else f"--{dashed}"


@datatype
class OutputSpec:
    id: str
    name: str
    path_template: str
    description: str = ""
    optional: bool = False
    is_list: bool = False
    stripped_extensions: tuple[str, ...] = ()
    value_key: str | None = None
    flag: str | None = None
    flag_separator: str = " "
    # Boutiques' file-template: lines that imcache fills with values and writes at the output's
    # path before the tool runs (a configuration file for the tool)
    file_template: tuple[str, ...] | None = None
    public_name: str = (
        ""  # the name users ask for (`--get`); the id unless the extension renames it
    )

    @property
    def label(self) -> str:
        return self.public_name or self.id


@datatype
class GroupSpec:
    id: str
    members: tuple[str, ...]
    mutually_exclusive: bool = False
    one_is_required: bool = False
    all_or_none: bool = False


@datatype
class Body:
    """A command-line template with its inputs: the whole tool, or one Styx sub-command."""

    id: str
    command_line: str
    inputs: tuple[InputSpec, ...]
    outputs: tuple[OutputSpec, ...] = ()
    groups: tuple[GroupSpec, ...] = ()

    def input(self, input_id: str) -> InputSpec:
        for spec in self.inputs:
            if spec.id == input_id:
                return spec
        raise KeyError(input_id)

    def value_keys(self) -> set[str]:
        """Every value-key its inputs and outputs define: what a template may name."""
        keys = {spec.value_key for spec in self.inputs}
        return keys | {out.value_key for out in self.outputs if out.value_key}


@datatype
class EnvSpec:
    """An environment variable the user may set that changes results: it enters the key."""

    name: str
    default: str
    choices: tuple[str, ...] = ()
    description: str = ""


@datatype
class Rule:
    """An extension rule: when `if_set` is given, require values of, or render, other inputs."""

    if_set: str
    require: dict[str, tuple[str, ...]] = field(default_factory=dict)
    render: dict[str, str] = field(default_factory=dict)


@datatype
class CompanionSpec:
    """A file a tool reads beside an input: the input's name with `suffix` for its extension."""

    suffix: str
    required: bool = True


@datatype
class Extension:
    """What imcache reads from `custom.imcache`; see docs/interfaces.md."""

    # input id -> templates tried in turn; the first whose fields all have values is the default
    defaults: dict[str, tuple[str, ...]] = field(default_factory=dict)
    maps: dict[str, dict[str, str]] = field(default_factory=dict)
    formats: dict[str, str] = field(default_factory=dict)
    divisors: dict[str, float] = field(default_factory=dict)  # a Number divided before formatting
    value_maps: dict[str, str] = field(default_factory=dict)  # input id -> table of `maps`
    counts: dict[str, str] = field(default_factory=dict)  # list input id -> printf of its length
    env: tuple[EnvSpec, ...] = ()
    rules: tuple[Rule, ...] = ()
    tool_check: Literal["mtime", "content"] = "mtime"
    output_names: dict[str, str] = field(default_factory=dict)
    output_templates: dict[str, str] = field(default_factory=dict)  # output id -> path template
    output_if_any: dict[str, tuple[str, ...]] = field(default_factory=dict)  # output id -> inputs
    template_only: tuple[str, ...] = ()  # inputs that feed templates, never the command line
    # File input id -> the files read with each of its files, by suffix (`.bval` beside dwi.nii.gz)
    companions: dict[str, tuple[CompanionSpec, ...]] = field(default_factory=dict)
    # A nipype interface (nipype_source.py): its class, whose own cmdline and output listing
    # make the argv and the outputs on a miss
    nipype_class: str = ""


@datatype
class Interface:
    name: str  # PACKAGE.Name
    source: str  # the file it was loaded from
    digest: str  # xxh3-128 of the canonical descriptor: an edited definition never hits
    tool_name: str
    description: str
    body: Body
    fixed_env: dict[str, str] = field(default_factory=dict)
    stdout_output: OutputSpec | None = None
    stderr_output: OutputSpec | None = None
    extension: Extension = field(default_factory=Extension)
    version: str = ""

    @property
    def inputs(self) -> tuple[InputSpec, ...]:
        return self.body.inputs

    @property
    def outputs(self) -> tuple[OutputSpec, ...]:
        return self.body.outputs

    @property
    def executable(self) -> str:
        """The program the command line starts with."""
        words = self.body.command_line.split()
        return words[0] if words else ""
