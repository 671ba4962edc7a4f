"""Library code names its arguments; only the CLI speaks of flags, mapped in one place (cli.app.flag_for)."""

import pytest

from dlexp.cli.app import error_line, flag_for
from dlexp.errors import ArgumentError, DlexpError
from dlexp.report.gradients import Thresholds, parse_fail_on


@pytest.mark.parametrize("call, python, cli", [
    (lambda: Thresholds(vanish_below=2), "vanish_below=2: must be a number in (0, 1)",
     "--vanish-below 2: must be a number in (0, 1)"),
    (lambda: Thresholds(dead_above=120), "dead_above=120: must be a percentage in [0, 100]",
     "--dead-above 120: must be a percentage in [0, 100]"),
    (lambda: parse_fail_on("vanshing"), "fail_on='vanshing': unknown verdict 'vanshing'; did you mean 'vanishing'?",
     "--fail-on 'vanshing': unknown verdict 'vanshing'; did you mean 'vanishing'?"),
])
def test_a_library_error_names_the_argument_and_the_cli_names_the_flag(call, python, cli):
    with pytest.raises(ArgumentError) as info:
        call()
    assert isinstance(info.value, DlexpError) and str(info.value).startswith(python)
    assert "--" not in str(info.value).split(":")[0]
    assert error_line(info.value).startswith(cli)


def test_flag_for_maps_arguments_to_flags():
    assert flag_for("vanish_below") == "--vanish-below" and flag_for("max_per_param") == "--max-per-param"
    assert flag_for("logdir") == "--tensorboard"  # export's argument, set by `dlexp export --tensorboard`
    assert error_line(DlexpError("x.yaml: seed: must be an integer")) == "x.yaml: seed: must be an integer"
