"""core/schema.py is the one definition of the run file's root attributes: the writer, the reader's
defaults, the listings, the app's details rows and docs/run-file.md follow it."""

import math

import numpy as np
import pytest

from core import schema, store
from core.synthetic import synthetic_run
from tests.conftest import ROOT

SHIPPED = sorted((ROOT / "cached_traces").glob("*.nc"))


def test_docs_table_is_the_definition():
    """docs/run-file.md's attribute table is `python -m core.schema`'s output: every field, its type and meaning."""
    text = (ROOT / "docs" / "run-file.md").read_text()
    assert schema.markdown_table() in text, "regenerate the table of docs/run-file.md with `python -m core.schema`"
    for f in schema.FIELDS:
        assert f"| `{f.name}` |" in text and f.meaning in text


def test_names_are_unique_and_the_derived_lists_follow_the_definition():
    names = [f.name for f in schema.FIELDS]
    assert len(names) == len(set(names))
    assert store.REQUIRED_ATTRS == ("model", "prior", "architecture", "iterations", "created")
    assert schema.defaults()["lr_floor"] == 0.0 and schema.defaults()["lr_hold"] == 0.0
    assert math.isnan(schema.defaults()["compile_time_s"])
    details = store.detail_fields()
    assert details[0] == ("model", "Model") and ("auroc", "AUROC (chi-square, or entropy)") in details and ("method", "Method") in details
    assert all(label for _, label in details) and "architecture" not in dict(details)
    summary = [f.name for f in store.RunSummary.__dataclass_fields__.values()]
    assert summary == ["name", "path", "model", "prior", "method", "label", "iterations", "accuracy", "final_elbo",
                       "wall_time_s", "iterations_per_s", "created", "error"]


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_every_attribute_of_the_shipped_runs_is_defined_and_of_its_type(path):
    """So that `bnn evaluate` can write them again through the checking writer."""
    attrs = store.run_attrs(store.load_run(path))
    assert set(attrs) <= {f.name for f in schema.FIELDS}
    schema.check_attrs({k: v for k, v in attrs.items() if not schema.field_named(k).computed})


def _arguments(run):
    """build_run's arguments that rebuild ``run``."""
    means, sds = store.approximation(run)
    predictions, constant = run["predictions"], run["predictions_constant_data"]
    return {"elbo": run["optimization"]["elbo"].values, "means": means, "sds": sds,
                "hyper_draws": {k: run["posterior"][k].values[0] for k in run["posterior"].data_vars},
                "labels": predictions["label"].values[0], "probability": predictions["probability"].values,
                "expected_entropy": predictions["expected_entropy"].values, "images": constant["image"].values,
                "true_labels": constant["true_label"].values,
                "shift": {group: run[group].to_dataset() for group in store.SHIFT_GROUPS}}


@pytest.fixture
def run():
    return synthetic_run("mlp", "hierarchical", n_digits=40)


def given(run) -> dict:
    return {k: v for k, v in store.run_attrs(run).items() if not schema.field_named(k).computed}


@pytest.mark.parametrize("extra, message", [
    ({"colour": "blue"}, "unknown run-file attribute(s) colour"),
    ({"schema": "other"}, "schema are set by the writer"),
    ({"schema_version": 9}, "schema_version are set by the writer"),
    ({"auroc": 0.5}, "auroc are set by the writer"),
    ({"iterations": 2.5}, "iterations (float, not int)"),
    ({"prior_params": [1, 2]}, "prior_params (list, not JSON)"),
    ({"label": 3}, "label (int, not str)"),
])
def test_the_writer_refuses_what_the_definition_does_not_allow(run, extra, message):
    with pytest.raises(ValueError) as error:
        store.build_run(attrs=given(run) | extra, **_arguments(run))
    assert message in str(error.value)


def test_the_writer_needs_the_required_attributes(run):
    attrs = given(run)
    del attrs["created"]
    with pytest.raises(ValueError, match=r"attribute\(s\) created missing"):
        store.build_run(attrs=attrs, **_arguments(run))


def test_the_writer_rebuilds_a_run_as_it_was(run):
    again = store.build_run(attrs=given(run), **_arguments(run))
    assert dict(again.attrs) == dict(run.attrs)
    for group in ("variational_mean", "variational_sd"):
        assert again[group].to_dataset().identical(run[group].to_dataset())
    assert run["variational_mean"]["dense_1.W_sd"].attrs == {"transform": "log"}


def test_a_field_added_in_one_place_reaches_writer_reader_listing_and_details(tmp_path, run, monkeypatch):
    temperature = schema.Field("temperature", float, "the posterior's temperature", "Temperature", default=1.0,
                               summary="temperature")
    with pytest.raises(ValueError, match="unknown run-file attribute"):
        store.build_run(attrs=given(run) | {"temperature": 0.5}, **_arguments(run))

    monkeypatch.setattr(schema, "FIELDS", (*schema.FIELDS, temperature))
    # the writer takes it, and checks its type
    tempered = store.build_run(attrs=given(run) | {"temperature": 0.5}, **_arguments(run))
    with pytest.raises(ValueError, match="temperature"):
        store.build_run(attrs=given(run) | {"temperature": "hot"}, **_arguments(run))
    store.save_run(tempered, tmp_path / "tempered.nc")
    store.save_run(run, tmp_path / "plain.nc")  # written before the field existed
    # the reader: the file's value, or the default for a file without it
    assert store.run_attrs(store.load_run(tmp_path / "tempered.nc"), defaults=True)["temperature"] == 0.5
    assert store.run_attrs(store.load_run(tmp_path / "plain.nc"), defaults=True)["temperature"] == 1.0
    assert "temperature" not in store.run_attrs(store.load_run(tmp_path / "plain.nc"))
    # the listing
    rows = {s.name: s for s in store.list_runs(tmp_path)}
    assert rows["tempered"].temperature == 0.5 and rows["plain"].temperature == 1.0
    assert rows["plain"].model == "mlp" and rows["plain"].error == ""
    # the details table and the docs
    assert store.detail_fields()[-1] == ("temperature", "Temperature")
    assert "| `temperature` | float |  | the posterior's temperature |" in schema.markdown_table()


def test_a_listing_row_of_an_unusable_file_has_blank_values(tmp_path):
    (tmp_path / "junk.nc").write_text("hello")
    (row,) = store.list_runs(tmp_path)
    assert row.error and row.model == "" and row.iterations == 0 and np.isnan(row.accuracy)


def test_decoding_follows_the_types():
    """A label that looks like JSON stays text; an attribute this program does not know is decoded when it looks like JSON."""
    assert schema.decode("label", "[draft] first try") == "[draft] first try"
    assert schema.decode("prior_params", '{"sd": 0.1}') == {"sd": 0.1}
    assert schema.decode("newer_thing", '{"a": 1}') == {"a": 1}
    assert type(schema.decode("iterations", np.int64(3))) is int
