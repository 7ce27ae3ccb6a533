"""Only a written, intact record makes an entry: absent, cut short or edited is not trusted."""

from __future__ import annotations

import os
from pathlib import Path

from imcache.core.entry import output_damage
from imcache.core.layout import cache_root
from imcache.core.store import Store


def test_entry_is_complete_only_with_a_valid_record(tmp_path: Path) -> None:
    store = Store(cache_root(str(tmp_path)))
    store.ensure("pkg.Tool")
    entry = store.prepare_entry("pkg.Tool", "k" * 32)
    assert store.read_record(entry) is None
    (Path(entry) / "imcache.json").write_text('{"layout": 1, "key": ')  # cut short
    assert store.read_record(entry) is None
    store.publish(entry, {"layout": 1, "key": "k" * 32})
    record = store.read_record(entry)
    assert record is not None
    assert {name: record[name] for name in ("layout", "key")} == {"layout": 1, "key": "k" * 32}
    assert not [n for n in os.listdir(entry) if ".tmp-" in n]


def test_an_edited_record_is_not_trusted(tmp_path: Path) -> None:
    store = Store(cache_root(str(tmp_path)))
    store.ensure("pkg.Tool")
    entry = store.prepare_entry("pkg.Tool", "k" * 32)
    store.publish(entry, {"layout": 1, "key": "k" * 32, "argv": ["tool", "a"]})
    path = Path(entry) / "imcache.json"
    path.write_text(path.read_text().replace('"a"', '"b"'))
    record, problem = store.check_record(entry)
    assert record is None
    assert "edited" in problem


def test_output_damage_names_a_resized_or_missing_output(tmp_path: Path) -> None:
    (tmp_path / "out.nii").write_bytes(b"abcd")
    record = {"outputs": {"one": {"path": "out.nii", "size": 4}, "many": [{"path": "out.nii"}]}}
    assert output_damage(str(tmp_path), record, rehash=False) == ""
    (tmp_path / "out.nii").write_bytes(b"abc")
    assert output_damage(str(tmp_path), record, rehash=False) == "out.nii changed size"
    (tmp_path / "out.nii").unlink()
    assert output_damage(str(tmp_path), record, rehash=False).endswith("is missing")


def test_an_output_linking_out_of_the_entry_is_damage_even_without_rehashing(
    tmp_path: Path,
) -> None:
    """Issue 13 item 4: a record made before links out were refused must not be handed back
    (`--get`), nor read through by `verify` (rehash=False), which both go through here."""
    entry = tmp_path / "entry"
    entry.mkdir()
    (tmp_path / "outside.txt").write_text("elsewhere")
    (entry / "made_link").symlink_to(tmp_path / "outside.txt")
    (entry / "inner_link").symlink_to("made_here.txt")
    record = {"outputs": {"made": {"path": "made_link", "size": None}}}
    expected = "made_link is a symbolic link out of the entry"
    assert output_damage(str(entry), record) == expected
    assert output_damage(str(entry), record, rehash=False) == expected
    inner = {
        "outputs": {"made": {"path": "inner_link", "size": None}},
        "files": {"inner_link": {"link": "made_here.txt"}},
    }
    assert output_damage(str(entry), inner) == ""


def test_a_moved_signature_is_read_against_the_recorded_digest(tmp_path: Path) -> None:
    """Issue 13 item 2: same size, same inode, other bytes: only the digest can tell."""
    from imcache.core.entry import output_signature
    from imcache.core.hashing import digest_file

    out = tmp_path / "out.nii"
    out.write_bytes(b"abcd")
    item = {"path": "out.nii", "size": 4, "signature": output_signature(out.stat())}
    record = {
        "outputs": {"one": item},
        "files": {"out.nii": {"size": 4, "xxh3": digest_file(str(out))}},
    }
    assert output_damage(str(tmp_path), record) == ""
    os.chmod(out, 0o444)  # the signature moves (ctime), the content does not
    assert output_signature(out.stat()) != item["signature"]
    assert output_damage(str(tmp_path), record) == ""
    with open(out, "r+b") as handle:
        handle.write(b"X")
    assert (
        output_damage(str(tmp_path), record)
        == "out.nii was changed after it was cached (digest mismatch)"
    )
    assert output_damage(str(tmp_path), record, rehash=False) == "", "verify reads it itself"
    del record["files"]
    assert "no digest" in output_damage(str(tmp_path), record)
