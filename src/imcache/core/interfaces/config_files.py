"""Boutiques' `file-template`: a configuration file that the tool reads, filled with the run's
values and written into the entry folder before the tool starts.

Filled as bosh fills it, so that a descriptor means the same to both: each line has its
value-keys replaced by the values (String and File values, and output paths, shell-quoted; a list
joined with its separator); a line naming an input that has no value is left empty; the lines are
joined with newlines. Unlike bosh, keys are replaced in one pass, so a value that itself contains
`[KEY]` is written as it is.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping

from imcache.core.interfaces.model import FileArg, Interface, OutputSpec, Scalar, Value, Values
from imcache.core.interfaces.templates import key_pattern


def fill_file_template(
    interface: Interface, output: OutputSpec, values: Values, output_paths: Mapping[str, str]
) -> str:
    """The text of `output`'s configuration file for these values and these output paths."""
    texts = _key_texts(interface, values, output_paths, output.stripped_extensions)
    pattern = key_pattern(interface.body.value_keys())
    filled = []
    for line in output.file_template or ():
        keys = pattern.findall(line)
        if any(key not in texts for key in keys):
            filled.append("")  # names an input without a value: bosh clears the line
            continue
        for key in keys:
            if texts[key] == "":  # an empty value takes the space before it along
                line = line.replace(f" {key}", key)
        filled.append(pattern.sub(lambda match: texts[match.group(0)], line))
    return "\n".join(filled)


def _key_texts(
    interface: Interface,
    values: Values,
    output_paths: Mapping[str, str],
    stripped: tuple[str, ...],
) -> dict[str, str]:
    texts = {}
    for spec in interface.inputs:
        if spec.id in values:
            text = _text(values[spec.id], spec.type in ("String", "File"), spec.list_separator)
            if spec.type in ("String", "File"):
                for extension in stripped:  # as bosh does: wherever it stands in the value
                    text = text.replace(extension, "") if extension else text
            texts[spec.value_key] = text
    for out in interface.outputs:
        if out.value_key and out.id in output_paths:
            texts[out.value_key] = shlex.quote(output_paths[out.id])
    return texts


def _text(value: Value, quoted: bool, separator: str) -> str:
    items = value if isinstance(value, list) else [value]
    return separator.join(_item(item, quoted) for item in items)


def _item(item: Scalar, quoted: bool) -> str:
    text = item.path if isinstance(item, FileArg) else str(item)
    return shlex.quote(text) if quoted else text
