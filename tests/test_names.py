"""The one rule that turns free text (a config's file name, a sweep name, a label) into a folder name."""

from dlexp.config import NAME_PATTERN
from dlexp.names import safe_name


def test_safe_name_keeps_ordinary_names_and_folds_the_rest():
    assert safe_name("quickstart") == "quickstart" and safe_name("lr_0.1-adam") == "lr_0.1-adam"
    assert safe_name("sigmoid, standard init") == "sigmoid-standard-init"  # a run of odd characters: one "-"
    assert safe_name("../../etc/passwd") == "etc-passwd"  # no path, no hidden name
    assert safe_name("--help") == "help" and safe_name("_x_") == "x"
    assert safe_name("über") == "ber" and safe_name("...") == "run" and safe_name("", default="sweep") == "sweep"
    assert safe_name("a" * 150) == "a" * 100 and safe_name("b" * 70, limit=60) == "b" * 60


def test_a_safe_name_is_a_valid_config_name():
    for text in ["_private", "-x", ".hidden", "a b\tc", "x" * 300, "日本", "0"]:
        assert NAME_PATTERN.match(safe_name(text)), text
