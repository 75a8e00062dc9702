"""Reading a user's CSV: what works, and one plain line for everything that doesn't."""

from __future__ import annotations

import numpy as np
import pytest

from shrinkcli.data import read_csv
from shrinkcli.errors import DataError


def write(tmp_path, text: str, name: str = "d.csv"):
    p = tmp_path / name
    p.write_text(text)
    return p


def test_text_labels_and_renamed_columns(tmp_path):
    p = write(tmp_path, "resp,pred,school\n1,0,b\n2,1,a\n3,2,b\n4,5,a\n")
    d = read_csv(p, y="resp", x="pred", cluster="school")
    assert d.labels.tolist() == ["a", "b"]
    assert d.codes.tolist() == [1, 0, 1, 0]
    assert d.y.tolist() == [1, 2, 3, 4] and d.truth is None


def test_integer_labels_sort_numerically_like_r_factors(tmp_path):
    p = write(tmp_path, "y,x,cluster\n1,0,10\n2,1,2\n3,2,10\n4,5,2\n")
    assert read_csv(p).labels.tolist() == [2, 10]


BAD = [
    ("", "is empty"),
    ("y,x,cluster\n", "no rows"),
    ("y,x,group\n1,2,a\n2,3,b\n", "no column 'cluster'"),
    ("y,x,cluster\n1,2,a\nfoo,3,b\n2,1,b\n", "1 non-numeric values"),
    ("y,x,cluster\n1,,a\n2,3,b\n2,1,b\n3,,a\n", "2 missing values"),
    ("y,x,cluster\n1,2,a\n2,3,a\n", "1 cluster"),
    ("y,x,cluster\n1,2,a\n2,2,b\n3,2,b\n", "constant"),
    ("y,x,cluster\n1,2,a\n2,3,\n", "missing cluster labels"),
    ('y,x,cluster\n1,2,"a\n', "cannot read"),
]


@pytest.mark.parametrize("text,message", BAD)
def test_bad_files_raise_data_error(tmp_path, text, message):
    with pytest.raises(DataError, match=message):
        read_csv(write(tmp_path, text))


@pytest.mark.parametrize("text,message", BAD)
def test_bad_files_through_the_cli_exit_2_with_one_line(cli, tmp_path, text, message):
    res = cli("fit", "--data", write(tmp_path, text))
    assert res.code == 2 and res.out == ""
    assert len(res.err.strip().splitlines()) == 1 and message in res.err


def test_unreadable_paths(cli, tmp_path):
    for target, message in [(tmp_path / "none.csv", "does not exist"), (tmp_path, "folder")]:
        res = cli("fit", "--data", target)
        assert res.code == 2 and message in res.err and len(res.err.splitlines()) == 1
    binary = tmp_path / "b.csv"
    binary.write_bytes(bytes(range(256)) * 4)
    res = cli("fit", "--data", binary)
    assert res.code == 2 and len(res.err.splitlines()) == 1


def test_column_flags_need_data_and_sim_flags_refuse_data(cli, tmp_path):
    p = write(tmp_path, "y,x,cluster\n1,0,a\n2,1,a\n3,2,b\n4,5,b\n")
    res = cli("fit", "--y", "resp")
    assert res.code == 2 and "--y" in res.err and "--data" in res.err
    res = cli("fit", "--data", p, "--sd-int", "2")
    assert res.code == 2 and "--sd-int" in res.err


def test_reads_the_reference_data_exactly(tmp_path):
    from conftest import REFERENCE

    d = read_csv(REFERENCE / "unbalanced" / "data.csv")
    assert d.n_obs == 500 and d.n_clusters == 100
    assert np.isfinite(d.x).all() and d.sizes().sum() == 500
