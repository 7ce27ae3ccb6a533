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
    assert output_damage(str(tmp_path), record) == ""
    (tmp_path / "out.nii").write_bytes(b"abc")
    assert output_damage(str(tmp_path), record) == "out.nii changed size"
    (tmp_path / "out.nii").unlink()
    assert output_damage(str(tmp_path), record).endswith("is missing")
