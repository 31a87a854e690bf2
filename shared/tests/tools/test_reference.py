"""The docs' reference tables are the code's: each lists what its source holds, and a change to the source changes
the table (so a page built from them cannot drift). Independent figures pin the architecture rows."""

from __future__ import annotations

import re

import pytest

from shared.commands.cli import build_parser
from shared.formats import tolerances
from shared.model import registry
from shared.tools import reference
from shared.util import errors


def rows(table: str) -> list[list[str]]:
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in table.splitlines()
            if line.startswith("| ") and not line.startswith("|---")][1:]


def test_the_flag_table_holds_every_flag_of_the_train_parser():
    parser = build_parser("cnnlab_torch.train")
    flags = {option for action in parser._actions for option in action.option_strings if option.startswith("--")}
    in_table = {re.sub(r"`", "", row[0]) for row in rows(reference.table("train-flags"))}
    assert in_table == flags - {"--help"}


def test_every_exit_status_constant_has_a_row_and_a_new_status_gets_one(monkeypatch):
    constants = {value for name, value in vars(errors).items() if name.startswith("EXIT_") and isinstance(value, int)}
    statuses = {int(row[0]) for row in rows(reference.exit_status_table())}
    assert statuses == constants and {0, 2, 130, 143} <= statuses
    monkeypatch.setitem(errors.EXIT_STATUSES, 77, "a status added to the code")
    monkeypatch.setattr(reference, "EXIT_STATUSES", errors.EXIT_STATUSES)
    assert ["77", "a status added to the code"] in rows(reference.exit_status_table())


def test_every_tolerance_has_a_row_with_its_bound_and_the_reason_written_beside_it(monkeypatch):
    table = rows(reference.tolerance_table())
    expected = {(kind, precision): bound for kind, bounds in tolerances.TOLERANCES.items()
                for precision, bound in bounds.items()}
    assert {(row[0].strip("`"), row[1].strip("`")): float(row[2]) for row in table} == expected
    assert all(row[3] != "no reason written" for row in table), "every tolerance in the table gives its reason"
    by_kind = {row[0].strip("`"): row[3] for row in table}
    assert "OpenCV's DNN module" in by_kind["onnx_runtimes"]
    # a comment above two keys gives both their reason (LiteRT's and ExecuTorch's bounds)
    assert by_kind["executorch_vs_native"] == by_kind["litert_vs_native"]
    monkeypatch.setitem(tolerances.TOLERANCES, "a_new_kind", {"32-true": 3e-4})
    assert ["`a_new_kind`", "`32-true`", "0.0003", "no reason written"] in rows(reference.tolerance_table())


def test_comments_are_read_as_the_reasons_of_the_keys_below_them():
    source = ('X: dict = {\n    # first reason\n    # continued\n    "a": {"32-true": 1},\n    "b": 2,\n'
              '    "c": {\n        # c in float64\n        "64-true": 3,\n    },\n}\n')
    assert reference.comments_above_keys(source, "X") == {
        ("a",): "first reason continued", ("a", "32-true"): "", ("b",): "first reason continued",
        ("c",): "first reason continued", ("c", "64-true"): "c in float64"}


def test_every_architecture_has_a_row_with_torchvision_s_parameter_counts(monkeypatch):
    table = {row[0].strip("`"): row for row in rows(reference.architecture_table())}
    assert set(table) == set(registry.ARCHITECTURES)
    # torchvision's ResNet-18 has 11,689,512 parameters with its 1000-class head (512 * 1000 + 1000); with a
    # 5-class head (512 * 5 + 5): 11,689,512 - 513,000 + 2,565. MobileNetV2: 3,504,872 with 1000 classes, and its
    # head is 1280 * classes + classes.
    assert table["resnet18"][5] == f"{11_689_512 - 513_000 + 2_565:,}"
    assert table["mobilenet_v2"][5] == f"{3_504_872 - 1_281_000 + 6_405:,}"
    # torchvision's published 1.814 G multiply-adds for ResNet-18 at 224 px, counted with a 1000-class head
    assert table["resnet18"][6] == f"{2 * (1.814e9 - 512 * 995) / 1e9:.3f} G"
    monkeypatch.setitem(registry.ARCHITECTURES, "tiny_test_net", registry.ARCHITECTURES["cifar_cnn_max"])
    assert "`tiny_test_net`" in reference.architecture_table()


def test_an_unknown_table_is_a_usage_error_in_one_line(capsys):
    with pytest.raises(ValueError, match="the tables are: train-flags, help"):
        reference.table("colours")
    with pytest.raises(SystemExit) as exit:
        reference.main(["colours"])
    assert exit.value.code == errors.EXIT_USAGE and len(capsys.readouterr().err.strip().splitlines()) == 1
