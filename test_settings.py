"""
Tests of settings (settings.py): parsing --key=value and config files by name, type and value, and
resolving a run's settings once from a checkpoint and a dataset. (Bad settings through the real command
lines are in test_failures.py; variants of a comparison in test_compare.py.)
"""
import pytest

from errors import ConfigError
from model import GPTConfig
from settings import MODEL_KEYS, TRAIN, model_settings, parse_config


def test_config_errors():
    with pytest.raises(ConfigError, match='unknown setting .n_layers.*did you mean n_layer'):
        parse_config(['--n_layers=4'], TRAIN)
    with pytest.raises(ConfigError, match='should be an int'):
        parse_config(['--n_layer=4.5'], TRAIN)
    with pytest.raises(ConfigError, match='should be a bool'):
        parse_config(['--compile=1'], TRAIN)
    assert parse_config(['--learning_rate=1', '--wavelet=haar'], TRAIN)[0]['learning_rate'] == 1.0


def test_a_checkpoint_decides_the_model_of_a_resumed_or_converted_run():
    """Resume keeps the checkpoint's model and refuses settings that contradict it; a run from another's
    weights takes that model but for the settings given (attention='linear' converts)."""
    saved = vars(GPTConfig(n_layer=2, n_embd=32, n_head=2, vocab_size=27, position='rope'))
    config, given = parse_config(['--attention=linear', '--n_layer=2'], TRAIN)
    kept = model_settings(config, {'n_layer'}, saved, keep=True)
    assert kept == {k: saved[k] for k in MODEL_KEYS}
    with pytest.raises(ConfigError, match="holds a model with attention='softmax', but the settings say attention='linear'"):
        model_settings(config, given, saved, keep=True, source='x/ckpt.pt')
    converted = model_settings(config, given, saved, keep=False)
    assert converted['attention'] == 'linear' and converted['position'] == 'rope' and converted['n_embd'] == 32
    assert model_settings(config, given) == {k: config[k] for k in MODEL_KEYS}  # from scratch: the settings' own


def test_key_space_value_and_help_with_meanings(capsys):
    """--key value works as the prepare scripts' --input x does; --help says what each setting does."""
    assert parse_config(['--max_iters', '10', '--wavelet', 'haar'], TRAIN)[0]['max_iters'] == 10
    with pytest.raises(ConfigError, match='write --compile=value'):
        parse_config(['--compile'], TRAIN)
    with pytest.raises(SystemExit):
        parse_config(['--help'], TRAIN, 'the doc')
    out = capsys.readouterr().out
    assert out.startswith('the doc') and 'GPTConfig (model.py)' in out
    line = next(l for l in out.splitlines() if l.strip().startswith('warmup_iters = 200'))
    assert 'linear warmup steps' in line
    line = next(l for l in out.splitlines() if l.strip().startswith('init_from ='))
    assert "a new optimiser" in line  # a comment that goes on below its field is read whole
    with pytest.raises(SystemExit):
        parse_config(['--help'], TRAIN, from_checkpoint=(GPTConfig,))
    out = capsys.readouterr().out
    assert "the checkpoint's" in out and "warmup_iters = 200" in out  # the help was printed, and a train default
    line = next(l for l in out.splitlines() if l.strip().startswith('n_layer'))
    assert line.split()[:2] == ['n_layer', 'decoder']  # a checkpoint's model: its name and comment, no default to show


@pytest.mark.parametrize('script', ['sample.py', 'compare.py', 'bench.py'])
def test_help_into_a_reader_that_stops_early_is_no_traceback(script, repo):
    """`python sample.py --help | head -1` (a red-team pass): the reader goes away, and the script ends quietly."""
    import subprocess
    import sys
    r = subprocess.run(f'"{sys.executable}" {script} --help | head -1', shell=True, cwd=repo, capture_output=True,
                       text=True, timeout=120)
    assert r.stdout.strip() and r.stderr == '', r.stderr
