"""`dlexp init` writes the schema's own defaults: loading the starter equals loading an empty config."""

import yaml

from dlexp.config import load_config, validate_mapping
from dlexp.starter import NOTES, all_paths, starter_yaml


def test_starter_loads_to_exactly_the_defaults(cli, tmp_path):
    path = tmp_path / "exp.yaml"
    result = cli("init", path)
    assert result.code == 0, result.stderr
    empty = tmp_path / "empty" / "exp.yaml"  # same file name: a config's name defaults to it
    empty.parent.mkdir()
    empty.write_text("{}\n")
    assert load_config(path).model_dump() == load_config(empty).model_dump()
    assert cli("init", path).code == 2  # no overwrite without --force
    assert cli("init", path, "--force").code == 0


def test_starter_names_every_key_with_what_it_accepts():
    text = starter_yaml("exp.yaml")
    data = yaml.safe_load(text)
    for path in all_paths():
        node = data
        for part in path.split("."):
            assert part in node, f"{path} missing from the starter"
            node = node[part]
    lines = text.splitlines()
    for k, line in enumerate(lines):
        if line.strip() and not line.lstrip().startswith("#") and not line.rstrip().endswith(":"):
            assert lines[k - 1].lstrip().startswith("#"), f"no comment above {line!r}"
    assert "elu | identity | leaky_relu | relu" in text  # from the activation registry
    assert "an integer from 1 to 1,000,000" in " ".join(text.split())
    assert "dlexp_version" not in text
    assert validate_mapping(data, "starter").model_dump() == validate_mapping({}, "empty").model_dump()


def test_notes_name_real_keys():
    assert set(NOTES) <= set(all_paths())
