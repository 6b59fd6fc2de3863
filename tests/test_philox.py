"""Philox4x32-10 against Random123's known answers, and the dropout stream layout."""
from pathlib import Path

import numpy as np
import pytest

from kernelgrad.kernels.philox import dropout_mask, dropout_words, keep_threshold, philox4x32_10

KAT = Path(__file__).parent / "data" / "philox4x32_10_kat.txt"


def kat_rows():
    for line in KAT.read_text().splitlines():
        if line.startswith("philox4x32 10 "):
            words = [int(w, 16) for w in line.split()[2:]]
            yield words[:4], words[4:6], words[6:10]


def test_kat_file_has_three_vectors():
    assert len(list(kat_rows())) == 3


@pytest.mark.parametrize("counter,key,expected", list(kat_rows()))
def test_known_answers(counter, key, expected):
    out = philox4x32_10(np.array(counter, np.uint32), np.array(key, np.uint32))
    assert out.dtype == np.uint32
    assert out.tolist() == expected


def test_vectorized_matches_one_at_a_time():
    rows = list(kat_rows())
    counters = np.array([r[0] for r in rows], np.uint32)
    keys = np.array([r[1] for r in rows], np.uint32)
    assert philox4x32_10(counters, keys).tolist() == [r[2] for r in rows]


def test_dropout_words_follow_the_documented_layout():
    seed, offset = 0x0123456789ABCDEF, 0xFEDCBA9876543210
    words = dropout_words(10, seed, offset)
    key = np.array([seed & 0xFFFFFFFF, seed >> 32], np.uint32)
    for block in range(3):
        counter = np.array([block, 0, offset & 0xFFFFFFFF, offset >> 32], np.uint32)
        expected = philox4x32_10(counter, key)[: min(4, 10 - 4 * block)]
        assert words[4 * block: 4 * block + 4].tolist() == expected.tolist()


def test_keep_threshold_edges():
    assert keep_threshold(0.0) == 0
    assert keep_threshold(0.5) == 2 ** 31
    assert keep_threshold(1 - 2 ** -40) == 2 ** 32 - 1
    assert dropout_mask((5,), 0.0, 1).all()
