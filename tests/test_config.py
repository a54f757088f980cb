import dataclasses

import pytest

from infcop.foundations.config import (
    Config,
    ConfigError,
    DataConfig,
    TrainingConfig,
    canonical,
    dense_hash,
    load_config,
    parse_config,
)
from infcop.engine.spec import check_names, run_hash


def test_defaults_load():
    cfg = load_config("configs/default.yaml")
    assert cfg.data.dataset == "digits" and len(cfg.experiment.seeds) >= 5


@pytest.mark.parametrize(
    "raw, match",
    [
        ({"training": {"epochs": -1}}, r"training\.epochs: -1 is out of range; must be >= 1"),
        ({"training": {"epochs": "ten"}}, r"training\.epochs: expected an integer"),
        ({"training": {"epochs": 2.5}}, r"training\.epochs: expected an integer"),
        ({"training": {"lr": True}}, r"training\.lr: expected a number"),
        ({"training": {"lrr": 0.1}}, r"training\.lrr: unknown key; allowed keys: .*lr"),
        (
            {"pruning": {"fraction": 1.0}},
            r"pruning\.fraction: 1\.0 is out of range; must be > 0\.0 and < 1\.0",
        ),
        ({"pruning": {"fraction": 0}}, r"pruning\.fraction: 0\.0 is out of range"),
        (
            {"data": {"dataset": "imagenet"}},
            r"data\.dataset: unknown value 'imagenet'; allowed: .*cifar10.*digits.*mnist1d",
        ),
        (
            {"model": {"name": "resnet1000"}},
            r"model\.name: unknown value 'resnet1000'; allowed: .*lenet_300_100",
        ),
        (
            {"methods": {"lottery": {}}},
            r"methods\.lottery: unknown method; known methods: .*infcop_if.*lth",
        ),
        ({"experiment": {"seeds": []}}, r"experiment\.seeds: needs at least 1 item"),
        ({"experiment": {"seeds": [0, 0, 1]}}, r"experiment\.seeds: 0 appears more than once"),
        (
            {"experiment": {"seeds": [-1]}},
            r"experiment\.seeds\[0\]: -1 is out of range; must be >= 0",
        ),
        ({"experiment": {"name": ".."}}, r"experiment\.name: '\.\.' is not allowed here"),
        ({"experiment": {"name": "a/b"}}, r"experiment\.name: 'a/b' is not allowed here"),
        ({"study": {"methods": ["lth", "lth"]}}, r"study\.methods: 'lth' appears more than once"),
        (
            {"study": {"methods": [{"name": "x", "method": "lth", "extra": 1}]}},
            r"study\.methods\[0\]\.extra: unknown key",
        ),
        (
            {
                "study": {
                    "methods": [{"name": "sap_bad", "method": "sap", "params": {"p": 2, "q": 1}}]
                }
            },
            r"PQ index needs p < q, got p=2, q=1",
        ),
        (
            {
                "study": {
                    "methods": [{"name": "eps", "method": "infcop_if", "params": {"epsilon": -1}}]
                }
            },
            r"study\.methods\[eps\]\.params\.epsilon: -1\.0 is out of range",
        ),
        (
            {"study": {"methods": [{"name": "lth", "method": "wr"}]}},
            r"study\.methods\[0\]\.name: 'lth' is a registered method",
        ),
        (
            {"study": {"methods": ["lth"], "diagnose": ["wrr"]}},
            r"study\.diagnose\[0\]: 'wrr' is neither",
        ),
        (
            {"study": {"pairs": ["digits/lenet_300_10"]}},
            r"study\.pairs\[0\]: unknown pair 'digits/lenet_300_10'",
        ),
        (
            {"methods": {"infcop_if": {"epsilon": -0.1}}},
            r"methods\.infcop_if\.epsilon: -0\.1 is out of range",
        ),
        (
            {"methods": {"finetune": {"lrate": 0.1}}},
            r"methods\.finetune\.lrate: unknown key; allowed keys: lr",
        ),
        (
            {"stopping": {"aggregation": "mean"}},
            r"stopping\.aggregation: unknown value 'mean'; allowed: signed, absolute",
        ),
        ({"trainin": {}}, r"trainin: unknown section"),
        (
            {"training": {"rewind_point": "3 epochs"}},
            r"training\.rewind_point: '3 epochs' is not a training point",
        ),
        (
            {"pruning": {"pq_p": 2.0, "pq_q": 1.0}},
            r"pruning\.pq_p: must be smaller than pruning\.pq_q",
        ),
        ({"training": {"milestones": 0.5}}, r"training\.milestones: expected a list"),
    ],
)
def test_bad_values_name_the_key(raw, match):
    with pytest.raises(ConfigError, match=match):
        check_names(parse_config(raw))


def test_set_overrides_parse_yaml_values():
    cfg = load_config(
        "configs/default.yaml",
        ["training.epochs=3", "data.dataset=mnist1d", "training.milestones=[0.3]"],
    )
    assert (
        cfg.training.epochs == 3
        and cfg.data.dataset == "mnist1d"
        and cfg.training.milestones == (0.3,)
    )
    with pytest.raises(ConfigError, match="expected key=value"):
        load_config(None, ["training.epochs"])


def test_missing_file_is_clear():
    with pytest.raises(ConfigError, match="config file not found: nope.yaml"):
        load_config("nope.yaml")


def test_canonical_omits_defaults_and_non_identity_fields():
    assert canonical(DataConfig()) == "DataConfig()"
    assert canonical(DataConfig(data_dir="/elsewhere", download=True)) == "DataConfig()"
    assert canonical(TrainingConfig(lr=0.1, epochs=3)) == "TrainingConfig(epochs=3,lr=0.1)"


def test_new_defaulted_field_keeps_hashes():
    """Adding a field with a default must not change existing ids (OpenLTH's rule)."""

    @dataclasses.dataclass(frozen=True)
    class TrainingWithNewField(TrainingConfig):
        label_smoothing: float = 0.0

    old = TrainingConfig(lr=0.1)
    new = TrainingWithNewField(lr=0.1)
    assert canonical(old).replace("TrainingConfig", "") == canonical(new).replace(
        "TrainingWithNewField", ""
    )


def test_pinned_hashes():
    """Regression: these ids name existing result directories. Change only on purpose."""
    assert dense_hash(Config()) == "f0c4e1b052bb"
    cfg = parse_config(
        {"data": {"dataset": "mnist1d"}, "model": {"name": "cnn1d"}, "training": {"epochs": 10}}
    )
    assert dense_hash(cfg) == "f4a4cf2ca1da"
    assert run_hash(Config(), "lth") == "adbc5659bbbf"
    assert (
        run_hash(parse_config({"methods": {"infcop_if": {"epsilon": 0.2}}}), "infcop_if")
        == "9ff31bd38486"
    )


def test_hash_ignores_paths_seeds_and_levels_but_not_method_params():
    a = parse_config({})
    b = parse_config({"experiment": {"results_dir": "/x", "seeds": [7]}, "pruning": {"levels": 9}})
    assert run_hash(a, "infcop_if") == run_hash(b, "infcop_if")
    c = parse_config({"methods": {"infcop_if": {"epsilon": 0.3}}})
    assert run_hash(a, "infcop_if") != run_hash(c, "infcop_if")
    assert run_hash(a, "infcop_if") != run_hash(a, "infcop_gf")
