"""The files an input image is made of besides the one named: found by the format's own rule.

A tool given `vol.mih` reads the data file that the header names; given `x.hdr` it reads `x.img`;
given `x+orig.HEAD` it reads `x+orig.BRIK`. Those files are part of the input's content, so they
enter the key (hashing.py) and are watched like the named file; one that is missing is a usage
error naming it, before anything runs.

- MRtrix `.mih` and `.mif`: the header's `file: NAME [OFFSET]` lines, NAME relative to the
  header's folder unless absolute; `file: .` is the header's own file; a `[]` in NAME numbers a
  series of files (`vol-[].dat`: vol-0.dat, vol-1.dat, ...), as MRtrix's name parser reads it.
- Analyze / NIfTI pairs: `x.hdr` and `x.img`, either given, either compressed.
- AFNI: `x+orig.HEAD` and `x+orig.BRIK` (compressed or not); also `+tlrc` and `+acpc`.

Any other name has none, at the cost of a suffix test: a hit pays nothing more for it.

A definition may name more (`custom.imcache.companions`): `.bval` and `.bvec` beside a DWI's
`dwi.nii.gz` are `dwi.bval` and `dwi.bvec` (`declared`).
"""

from __future__ import annotations

import os
import stat

from imcache.core.errors import UsageError
from imcache.core.interfaces.model import CompanionSpec, FileArg, Value

MRTRIX_SUFFIXES = (".mih", ".mif")  # .mif.gz keeps its data inside the compressed stream
MRTRIX_MAGIC = b"mrtrix image"
PAIR_COMPRESSIONS = ("", ".gz", ".bz2", ".zst")  # what nibabel reads for a pair's either half
AFNI_VIEWS = ("+orig.", "+tlrc.", "+acpc.")
AFNI_COMPRESSIONS = ("", ".gz", ".bz2", ".Z")
AFNI_HEADERS = tuple(f"{view}HEAD" for view in AFNI_VIEWS)
AFNI_DATA = tuple(f"{view}BRIK{c}" for view in AFNI_VIEWS for c in AFNI_COMPRESSIONS)
PAIR_HEADERS = tuple(f".hdr{c}" for c in PAIR_COMPRESSIONS)
PAIR_IMAGES = tuple(f".img{c}" for c in PAIR_COMPRESSIONS)
ANY_LOWER = (*MRTRIX_SUFFIXES, *PAIR_HEADERS, *PAIR_IMAGES)
COMPRESSIONS = (".gz", ".bz2", ".zst")  # dropped before the extension a companion replaces


def declared(
    specs: dict[str, tuple[CompanionSpec, ...]], values: dict[str, Value]
) -> dict[str, list[str]]:
    """Each input file's companions that the definition declares, by absolute path: a required
    one that is missing is a usage error naming it; an optional one counts only if present."""
    found: dict[str, list[str]] = {}
    for input_id, wanted in specs.items():
        value = values.get(input_id)
        files = value if isinstance(value, list) else [value]
        for item in files:
            if isinstance(item, FileArg):
                found[item.path] = _by_suffix(item.path, input_id, wanted)
    return found


def _by_suffix(path: str, input_id: str, wanted: tuple[CompanionSpec, ...]) -> list[str]:
    stem = declared_stem(path)
    found = []
    for spec in wanted:
        companion = stem + spec.suffix
        if os.path.lexists(companion):
            _require_file(path, companion)
            found.append(companion)
        elif spec.required:
            raise UsageError(
                f"input {path!r} needs {companion!r} ({input_id} is read with its "
                f"{spec.suffix} file), which is missing",
                "give it beside the input, under the same name",
            )
    return found


def declared_stem(path: str) -> str:
    """`/d/dwi.nii.gz` -> `/d/dwi`: the name without compression and one extension."""
    folder, name = os.path.split(path)
    for compression in COMPRESSIONS:
        if name.lower().endswith(compression):
            name = name[: -len(compression)]
            break
    stem, _ = os.path.splitext(name)
    return os.path.join(folder, stem or name)


def may_have_companions(path: str) -> bool:
    """A suffix test, no system call: whether `companions` would look at all."""
    return path.lower().endswith(ANY_LOWER) or path.endswith(AFNI_HEADERS + AFNI_DATA)


def companions(path: str) -> list[str]:
    """The absolute paths, sorted, of the other files that the regular file `path` is read with
    (none for most); a missing one is a usage error naming it."""
    name = os.path.basename(path)
    lower = name.lower()
    if lower.endswith(MRTRIX_SUFFIXES):
        found = _mrtrix(path)
    elif lower.endswith(PAIR_HEADERS):
        found = _analyze_header(path, name)
    elif lower.endswith(PAIR_IMAGES):
        found = _present(path, _pair_names(name, "hdr"), "its Analyze/NIfTI header")
    elif name.endswith(AFNI_HEADERS + AFNI_DATA):
        found = _afni(path, name)
    else:
        return []
    for companion in found:
        _require_file(path, companion)
    return sorted(set(found) - {path})


def _mrtrix(path: str) -> list[str]:
    header = _header_lines(path)
    if header is None:
        return []  # not an MRtrix header: the tool says so, nothing to add
    folder = os.path.dirname(path)
    found = []
    for line in header:
        key, colon, value = line.partition(":")
        if not colon or key.strip() != "file" or not value.split():
            continue
        named = value.split()[0]  # the offset, if any, follows
        if named == ".":
            continue  # the data follows the header in this same file
        full = named if os.path.isabs(named) else os.path.join(folder, named)
        found += _numbered(path, full) if "[" in named else [os.path.normpath(full)]
    return found


def _header_lines(path: str) -> list[str] | None:
    """The header's lines up to END (comments dropped), or None when it is no MRtrix header.

    Read line by line: a .mif's data follows its END line and is never read here."""
    found = []
    try:
        with open(path, "rb") as handle:
            if handle.readline(len(MRTRIX_MAGIC) + 2).strip() != MRTRIX_MAGIC:
                return None
            for raw in handle:
                line = raw.decode("utf-8", "surrogateescape").split("#", 1)[0].strip()
                if line == "END":
                    break
                found.append(line)
    except OSError:
        return None  # a folder or an unreadable file: hashing it says what is wrong
    return found


def _numbered(header: str, pattern: str) -> list[str]:
    """`vol-[].dat` (or `vol-[0:3].dat`): every existing file with digits where the brackets are."""
    import re  # a numbered MRtrix header only

    folder, name = os.path.split(pattern)
    parts = re.split(r"\[[^\]]*\]", name)
    wanted = re.compile(r"\d+".join(re.escape(part) for part in parts) + "$")
    try:
        names = sorted(n for n in os.listdir(folder or ".") if wanted.match(n))
    except OSError:
        names = []
    if not names:
        _missing(header, pattern, "the data files its header names")
    return [os.path.join(folder, n) for n in names]


def _analyze_header(path: str, name: str) -> list[str]:
    """An Analyze/NIfTI pair header needs its image; another format's .hdr (ENVI) has none."""
    if not _is_analyze_header(path):
        return []
    return _present(path, _pair_names(name, "img"), "its image data")


def _is_analyze_header(path: str) -> bool:
    """The header of a pair: sizeof_hdr (348 or 540, either byte order) first, and not the magic
    of a single-file NIfTI (`n+1`, `n+2`) misnamed .hdr, whose data is inside it."""
    lower = path.lower()
    try:
        if lower.endswith(".gz"):
            import gzip  # only for a compressed pair header

            with gzip.open(path, "rb") as handle:
                head = handle.read(348)
        elif lower.endswith(".bz2"):
            import bz2

            with bz2.open(path, "rb") as handle:
                head = handle.read(348)
        elif lower.endswith(".zst"):
            return True  # no reader in the standard library: when in doubt, it is a pair
        else:
            with open(path, "rb") as handle:
                head = handle.read(348)
    except (OSError, EOFError, ValueError):
        return False  # not a header any reader opens: hashing it says what is wrong
    sizes = {int.from_bytes(head[:4], order) for order in ("little", "big")}
    if 348 in sizes:
        return head[344:348] != b"n+1\0"
    return 540 in sizes and head[4:8] != b"n+2\0"


def _pair_names(name: str, other: str) -> list[str]:
    """x.hdr.gz -> x.img, x.img.gz, ... in the case the name was given in."""
    lower = name.lower()
    for compression in PAIR_COMPRESSIONS:
        for own in ("hdr", "img"):
            if lower.endswith(f".{own}{compression}"):
                stem = name[: len(name) - len(own) - len(compression)]
                wanted = other.upper() if name[len(stem) : len(stem) + 3].isupper() else other
                return [f"{stem}{wanted}{c}" for c in PAIR_COMPRESSIONS]
    return []


def _afni(path: str, name: str) -> list[str]:
    """`x+orig.HEAD` needs its BRIK (compressed or not); a BRIK needs its HEAD."""
    view = max(AFNI_VIEWS, key=name.rfind)  # the last `+view.` in the name is the dataset's
    stem = name[: name.rfind(view) + len(view)]
    if name.endswith(AFNI_HEADERS):
        return _present(path, [f"{stem}BRIK{c}" for c in AFNI_COMPRESSIONS], "its BRIK data")
    return _present(path, [f"{stem}HEAD"], "its HEAD header")


def _present(path: str, names: list[str], what: str) -> list[str]:
    """Those of `names` (beside `path`) that exist: x.img and x.img.gz may both be there, and
    which one a tool reads is its own rule, so both count."""
    folder = os.path.dirname(path)
    found = [os.path.join(folder, n) for n in names if os.path.lexists(os.path.join(folder, n))]
    if not found:
        _missing(path, os.path.join(folder, names[0]), what)
    return found


def _require_file(path: str, companion: str) -> None:
    try:
        info = os.stat(companion)
    except OSError:
        _missing(path, companion, "a file it is read with")
    if not stat.S_ISREG(info.st_mode):
        raise UsageError(
            f"input {path!r} is read with {companion!r}, which is not a regular file",
            "give an image whose files are all regular files",
        )


def _missing(path: str, companion: str, what: str) -> None:
    raise UsageError(
        f"input {path!r} needs {companion!r} ({what}), which is missing",
        "an image of several files needs all of them: restore it, or convert the image to a "
        "single file (.nii, .mif)",
    )
