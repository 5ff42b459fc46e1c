import pytest
import yaml

from pipeline.config import Params
from pipeline.errors import InputError
from stages.params import load_params
from tests.conftest import REPO


def test_repo_params_yaml_is_valid():
    params = load_params(REPO / "params.yaml")
    assert params.prepare.min_count == 5
    assert (params.prepare.max_len.caption, params.prepare.max_len.question) == (24, 16)
    assert params.prepare.max_len.answer == 8


def test_unknown_key_is_named():
    with pytest.raises(InputError, match="unknown key 'prepare.min_cout'"):
        Params.from_mapping({"prepare": {"min_cout": 3}})


def test_unknown_nested_key_is_named():
    with pytest.raises(InputError, match="unknown key 'prepare.max_len.answr'"):
        Params.from_mapping({"prepare": {"max_len": {"answr": 3}}})


def test_wrong_type_is_named():
    with pytest.raises(InputError, match="'prepare.min_count'"):
        Params.from_mapping({"prepare": {"min_count": "five"}})


def test_missing_file_means_defaults(tmp_path):
    assert load_params(tmp_path / "params.yaml") == Params()


def test_bad_yaml_names_file(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("prepare: [\n")
    with pytest.raises(InputError, match="params.yaml: not valid YAML"):
        load_params(path)


def test_partial_sections_keep_defaults(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump({"prepare": {"min_count": 2}}))
    params = load_params(path)
    assert params.prepare.min_count == 2 and params.prepare.max_len.answer == 8


def test_partial_section_keeps_that_sections_own_defaults():
    params = Params.from_mapping({"train_d": {"epochs": 3}})
    assert params.train_d.epochs == 3
    assert "hciae-d-np-att" in params.train_d.variants and params.train_d.l2 > 0


def test_yes_no_stay_strings_as_dvc_writes_them(tmp_path):
    """`dvc exp run -S` rewrites params.yaml as YAML 1.2, unquoting "no": it must stay a string."""
    path = tmp_path / "params.yaml"
    path.write_text("report:\n  generic:\n  - no\n  - yes\n  - not sure\nchat:\n  seed: 1\n")
    params = load_params(path)
    assert params.report.generic == ("no", "yes", "not sure")


def test_precision_must_be_one_of_the_choices():
    params = Params.from_mapping({"train_g": {"precision": "bf16"}})
    assert params.train_g.precision == "bf16" and params.transfer.precision == "auto"
    with pytest.raises(InputError, match="'train_d.precision' has value 'fp16', expected one of"):
        Params.from_mapping({"train_d": {"precision": "fp16"}})


@pytest.mark.parametrize(
    ("section", "key", "value", "message"),
    [
        ("train_g", "epochs", 0, "key 'train_g.epochs' = 0 must be >= 1"),
        ("train_d", "batch_size", -4, "key 'train_d.batch_size' = -4 must be >= 1"),
        ("transfer", "alpha", -0.5, "key 'transfer.alpha' = -0.5 must be >= 0"),
        ("transfer", "tau", 0.0, "key 'transfer.tau' = 0.0 must be >= 1e-06"),
        ("train_d", "negatives", 100, "key 'train_d.negatives' = 100 must be in [1, 99]"),
        ("model", "dropout", 1.0, "key 'model.dropout' = 1.0 must be in [0, 0.99]"),
        ("compare", "level", 1.5, "key 'compare.level' = 1.5 must be in [0.5, 0.999]"),
        ("prepare", "val_from_train", -1, "key 'prepare.val_from_train' = -1 must be >= 0"),
    ],
)
def test_numeric_params_outside_their_range_are_one_line_errors(section, key, value, message):
    with pytest.raises(InputError) as err:
        Params.from_mapping({section: {key: value}})
    assert str(err.value) == f"params.yaml: {message}"


def test_every_numeric_default_is_inside_its_range():
    import dataclasses

    from pipeline.config import RANGES, _check_range

    def walk(obj, prefix=""):
        for f in dataclasses.fields(obj):
            value = getattr(obj, f.name)
            if dataclasses.is_dataclass(value):
                yield from walk(value, f"{prefix}{f.name}.")
            else:
                yield f.name, value, prefix + f.name

    seen = set()
    for name, value, key in walk(Params()):
        _check_range(name, value, key, "defaults")
        seen.add(name)
    assert set(RANGES) <= seen  # no range for a field that does not exist
