"""The layout rules of this project, checked from the source: no import cycles among its own
modules, and nothing imports a script (train.py, sample.py, bench.py, compare.py, decode.py, a prepare/ script)."""
import ast
import os

SCRIPTS = {'train', 'sample', 'bench', 'compare', 'decode', 'plot_pmfs', 'plot_wavelet'}


def project_modules(repo):
    """{module name: path} of the project's own modules, tests and configs left out."""
    mods = {}
    for folder, dirs, files in os.walk(repo):
        dirs[:] = [d for d in dirs if not d.startswith('.') and d not in ('data', 'out', 'results', 'config', '__pycache__')]
        for f in files:
            if f.endswith('.py') and not f.startswith('test_') and f != 'conftest.py':
                rel = os.path.relpath(os.path.join(folder, f), repo)[:-3].replace(os.sep, '.')
                mods[rel.removesuffix('.__init__')] = os.path.join(folder, f)
    return mods


def imports(path, mods):
    """The project modules that a file imports, anywhere in it."""
    found = set()
    for node in ast.walk(ast.parse(open(path).read())):
        names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        found |= {n for n in names if n in mods}
    return found


def test_no_import_cycles_and_no_script_is_imported(repo):
    mods = project_modules(repo)
    graph = {m: imports(p, mods) - {m} for m, p in mods.items()}
    scripts = SCRIPTS | {m for m in mods if m.startswith('prepare.') and m != 'prepare.common'}
    assert scripts <= set(mods) and 'model' in mods
    for m, deps in graph.items():
        assert not deps & scripts, f"{m} imports the script(s) {deps & scripts}"

    def visit(m, path):
        for d in graph[m]:
            assert d not in path, f"import cycle: {' -> '.join(path + [d])}"
            visit(d, path + [d])
    for m in graph:
        visit(m, [m])
    # the model file stands alone, but for two leaves: the arithmetic of linear attention and the settings checks
    assert graph['model'] <= {'linear_attention', 'checks'} and graph['linear_attention'] == graph['checks'] == set()


def test_tokenizers_import_no_model_and_no_script_imports_prepare(repo):
    """tokens/ holds plain tokenizers: nothing there reaches the model, even indirectly (the learned one,
    Equal-Info's, is equal_info/). Only the prepare scripts import prepare/ (its common part)."""
    mods = project_modules(repo)
    graph = {m: imports(p, mods) - {m} for m, p in mods.items()}

    def reach(m, seen=()):
        for d in graph[m] - set(seen):
            seen = reach(d, seen + (d,))
        return seen
    for m in mods:
        if m == 'tokens' or m.startswith('tokens.'):
            assert not {'model', 'checkpoints', 'system', 'settings', 'equal_info'} & set(reach(m)), m
        if not m.startswith('prepare'):
            assert not {d for d in graph[m] if d.startswith('prepare')}, f"{m} imports {graph[m]}"


def test_every_config_file_is_valid(repo):
    """Each file in config/ sets only known settings, to allowed values (compare_*: compare.py's)."""
    import glob
    import sys
    sys.path.insert(0, repo)
    from settings import TRAIN, parse_config
    from compare import COMPARE
    paths = sorted(glob.glob(os.path.join(repo, 'config', '*.py')))
    assert len(paths) > 10
    for path in paths:
        groups = COMPARE if os.path.basename(path).startswith('compare_') else TRAIN
        config, given = parse_config([path], groups)
        assert given, path
