"""
Tests of system.py's thread default: threads=0 is one thread per idle core (torch's default less the load
average), at least one; an idle machine keeps torch's default, and so does one without a load average.
"""
import os

import pytest
import torch

import system


@pytest.mark.parametrize('load, torch_default, cores, expect', [
    (0.0, 2, 2, 2),     # idle: torch's default
    (0.3, 2, 2, 2),
    (1.2, 2, 2, 1),     # one core busy of two: one thread
    (9.5, 2, 2, 1),     # very busy: still one
    (3.0, 8, 16, 8),    # hyperthreads: torch's default (the physical cores) caps it
    (12.0, 8, 16, 4),
    (0.0, 1, 16, 1),    # OMP_NUM_THREADS=1 (torchrun with several processes per node) is kept
])
def test_threads_default_to_the_idle_cores(monkeypatch, load, torch_default, cores, expect):
    monkeypatch.setattr(os, 'getloadavg', lambda: (load, load, load))
    monkeypatch.setattr(os, 'cpu_count', lambda: cores)
    monkeypatch.setattr(system, 'TORCH_THREADS', torch_default)
    assert system.default_threads() == expect


def test_without_a_load_average_threads_are_torchs_default(monkeypatch):
    def missing():
        raise OSError("no load average here")
    monkeypatch.setattr(os, 'getloadavg', missing)
    monkeypatch.setattr(system, 'TORCH_THREADS', 3)
    assert system.default_threads() == 3


def test_use_threads_sets_what_is_given_or_the_default(monkeypatch):
    before = torch.get_num_threads()
    try:
        monkeypatch.setattr(os, 'getloadavg', lambda: (5.0, 5.0, 5.0))
        monkeypatch.setattr(system, 'TORCH_THREADS', 2)
        system.use_threads(0)
        assert torch.get_num_threads() == 1
        monkeypatch.setattr(os, 'getloadavg', lambda: (0.0, 0.0, 0.0))
        monkeypatch.setattr(os, 'cpu_count', lambda: 2)
        system.use_threads(0)
        assert torch.get_num_threads() == 2
        system.use_threads(1)
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
