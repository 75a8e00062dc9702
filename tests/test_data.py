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


# --- column choices that cannot give a mixed model ---------------------------------------

REFUSED = [
    (["--y", "x", "--x", "x"], {"y": "x", "x": "x"}, "--y and --x both name column 'x'"),
    (["--cluster", "y"], {"cluster": "y"}, "--cluster names column 'y', which is the response"),
    (["--cluster", "x"], {"cluster": "x"}, "--cluster names column 'x', which is the predictor"),
    (["--cluster", "id"], {"cluster": "id"}, "as many clusters as rows (4)"),
]
GOOD = "y,x,cluster,id\n1,0,a,1\n2,1,a,2\n3,2,b,3\n4,5,b,4\n"


@pytest.mark.parametrize("flags,kwargs,message", REFUSED)
def test_column_choices_that_make_no_sense_are_refused(tmp_path, flags, kwargs, message):
    with pytest.raises(DataError, match=message.replace("(", r"\(").replace(")", r"\)")):
        read_csv(write(tmp_path, GOOD), **kwargs)


@pytest.mark.parametrize("flags,kwargs,message", REFUSED)
def test_column_choices_through_the_cli_exit_2_with_one_line(cli, tmp_path, flags, kwargs, message):
    res = cli("fit", "--data", write(tmp_path, GOOD), *flags)
    assert res.code == 2 and res.out == ""
    assert len(res.err.strip().splitlines()) == 1 and "Traceback" not in res.err
    assert message in res.err and "--" in res.err.split(";")[-1]  # says what to do


def test_every_cluster_a_single_row_is_refused_for_any_label_type(tmp_path):
    for labels in (["1", "2", "3"], ["a", "b", "c"], ["1.5", "2.5", "3.5"], ["19", "19.5", "x"]):
        rows = "".join(f"{i},{i * i},{lab}\n" for i, lab in enumerate(labels))
        with pytest.raises(DataError, match="as many clusters as rows"):
            read_csv(write(tmp_path, "y,x,cluster\n" + rows))


def test_one_pair_of_rows_sharing_a_cluster_is_enough(tmp_path):
    d = read_csv(write(tmp_path, "y,x,cluster\n1,0,a\n2,1,a\n3,2,b\n"))
    assert d.labels.tolist() == ["a", "b"] and d.codes.tolist() == [0, 0, 1]


# --- cluster labels: numbers when every label is a number, else text ----------------------


def test_numeric_labels_19_and_19_0_are_one_cluster(tmp_path):
    p = write(tmp_path, 'y,x,cluster\n1,0,19\n2,1,19.0\n3,2, 19\n4,5,"1.9e1"\n5,1,7\n6,3,7.0\n')
    d = read_csv(p)
    assert d.labels.dtype == np.int64 and d.labels.tolist() == [7, 19]
    assert d.codes.tolist() == [1, 1, 1, 1, 0, 0]
    assert d.cluster.tolist() == [19, 19, 19, 19, 7, 7]


def test_one_text_label_keeps_19_and_19_0_apart(tmp_path):
    p = write(tmp_path, "y,x,cluster\n1,0,19\n2,1,19.0\n3,2, 19\n4,5,a\n5,1,19.0\n6,3,a\n")
    d = read_csv(p)
    assert d.labels.tolist() == ["19", "19.0", "a"]  # text: stripped, sorted as text
    assert d.codes.tolist() == [0, 1, 0, 2, 1, 2]


def test_non_integer_numbers_are_float_labels_sorted_numerically(tmp_path):
    p = write(tmp_path, "y,x,cluster\n1,0,2.5\n2,1,19\n3,2,2.50\n4,5,10.25\n5,0,19.0\n6,2,10.25\n")
    d = read_csv(p)
    assert d.labels.dtype == np.float64 and d.labels.tolist() == [2.5, 10.25, 19.0]
    assert d.codes.tolist() == [0, 2, 0, 1, 2, 1]


def test_integer_labels_far_apart_and_negative(tmp_path):
    p = write(tmp_path, "y,x,cluster\n1,0,1000000000000\n2,1,-5\n3,2,-5\n4,5,1000000000000\n")
    d = read_csv(p)
    assert d.labels.dtype == np.int64 and d.labels.tolist() == [-5, 10**12]
    assert d.codes.tolist() == [1, 0, 0, 1]


def test_boolean_looking_labels_stay_the_text_of_the_file(tmp_path):
    d = read_csv(write(tmp_path, "y,x,cluster\n1,0,True\n2,1,false\n3,2,True\n4,5,false\n"))
    assert d.labels.tolist() == ["True", "false"] and d.codes.tolist() == [0, 1, 0, 1]


@pytest.mark.parametrize("column", ["3\n", "\n", '" "\n', "NA\n", "  \n"])
def test_a_missing_label_in_a_numeric_column_is_refused(tmp_path, column):
    p = write(tmp_path, "y,x,cluster\n1,0,1\n2,1,2\n3,2," + column + "4,5,2\n")
    if column == "3\n":
        assert read_csv(p).labels.tolist() == [1, 2, 3]
        return
    with pytest.raises(DataError, match="1 missing cluster labels \\(first at data row 3\\)"):
        read_csv(p)


def test_a_long_file_typed_in_chunks_keeps_the_labels_of_the_file(tmp_path):
    # pandas parses long files in chunks of about 262,144 rows and types each chunk on
    # its own: here the first chunk would be floats (1.0 and 2) and a later one text
    n = 300_000
    rows = ["y,x,cluster\n"] + [f"{i % 7},{i % 5},{'1.0' if i % 2 else '2'}\n" for i in range(n)]
    p = tmp_path / "long.csv"
    p.write_text("".join(rows) + "1,2,a\n2,3,a\n")
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        d = read_csv(p)
    assert d.labels.tolist() == ["1.0", "2", "a"]
    assert d.codes[:4].tolist() == [1, 0, 1, 0] and d.codes[-2:].tolist() == [2, 2]
    assert d.n_obs == n + 2


# --- the reader gives the same numbers as before ------------------------------------------


@pytest.mark.parametrize(
    "scenario", ["baseline", "fewer_obs", "more_obs", "unbalanced", "more_slope_variance"]
)
def test_reference_data_read_as_pandas_and_numpy_read_them(scenario):
    import pandas as pd
    from conftest import REFERENCE

    path = REFERENCE / scenario / "data.csv"
    raw = pd.read_csv(path)
    d = read_csv(path)
    labels, codes = np.unique(raw["cluster"].to_numpy(), return_inverse=True)
    assert np.array_equal(d.y, raw["y"].to_numpy(dtype=float))
    assert np.array_equal(d.x, raw["x"].to_numpy(dtype=float))
    assert d.labels.dtype == np.int64 and np.array_equal(d.labels, labels)
    assert np.array_equal(d.codes, codes) and np.array_equal(d.cluster, raw["cluster"])
    assert d.names == ("y", "x", "cluster") and d.source == str(path)


def test_messy_but_valid_csv(tmp_path):
    text = (
        "resp , pred,school\r\n"  # names are stripped, the file's and the flags'
        ' 1.5 ,"2",  North \r\n'
        '"-2e1", 0.25 ,"South"\r\n'
        '3,  -1,"North "\r\n'
        "+4.,1e-3,south\r\n"
    )
    p = write(tmp_path, text)
    d = read_csv(p, y="resp ", x="pred", cluster="school")
    assert d.y.tolist() == [1.5, -20.0, 3.0, 4.0]
    assert d.x.tolist() == [2.0, 0.25, -1.0, 0.001]
    assert d.labels.tolist() == ["North", "South", "south"]
    assert d.codes.tolist() == [0, 1, 0, 2]
    assert d.cluster.tolist() == ["North", "South", "North", "south"]


def test_quoted_and_padded_numbers_in_every_column(tmp_path):
    p = write(tmp_path, 'y,x,cluster\n"1", 0 ,"3"\n2 ,"1", 10\n 3,2,"3 "\n4,5,010\n')
    d = read_csv(p)
    assert d.y.tolist() == [1, 2, 3, 4] and d.x.tolist() == [0, 1, 2, 5]
    assert d.labels.dtype == np.int64 and d.labels.tolist() == [3, 10]
    assert d.codes.tolist() == [0, 1, 0, 1]
