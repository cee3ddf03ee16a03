"""The packages import downwards only: utils at the bottom, then layers and data_provider, models, speculative,
cli, exp, and run.py and the scripts on top; no two modules import each other (directly or round a circle),
and no project module is imported inside a function, where a circle could hide."""
import ast

import pytest

from conftest import REPO_ROOT

LEVEL = {'utils': 0, 'layers': 1, 'data_provider': 1, 'models': 2, 'speculative': 3, 'cli': 4, 'exp': 5, 'run': 6,
         'scripts': 6}


def module_name(path):
    parts = path.relative_to(REPO_ROOT).with_suffix('').parts
    return '.'.join(parts[:-1] if parts[-1] == '__init__' else parts)


def project_sources():
    return [p for p in REPO_ROOT.rglob('*.py') if p.relative_to(REPO_ROOT).parts[0] in LEVEL or p.name == 'run.py']


def imports(source):
    """(imported project module, whether the import sits at module level) of every import in source."""
    tree = ast.parse(source)
    top = {id(node) for node in tree.body}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            continue
        for name in names:
            if name.split('.')[0] in LEVEL:
                yield name, id(node) in top


def import_graph(files):
    """{module: {project modules it imports}} and [(module, imported) inside a function], of {module: source}."""
    graph, nested = {}, set()
    for module, source in files.items():
        graph[module] = set()
        for name, at_top in imports(source):
            target = name if name in files else name.rpartition('.')[0]
            if target in files and target != module:
                graph[module].add(target)
                if not at_top:
                    nested.add((module, target))
    return graph, sorted(nested)


def upward_imports(graph):
    return [(m, t) for m, targets in graph.items() for t in targets
            if LEVEL[t.split('.')[0]] >= LEVEL[m.split('.')[0]] and t.split('.')[0] != m.split('.')[0]]


def circle(graph):
    """Some circle of modules importing each other, or None."""
    state = {}

    def visit(module, path):
        state[module] = 'open'
        for target in sorted(graph.get(module, ())):
            if state.get(target) == 'open':
                return path[path.index(target):] + [target]
            if target not in state and (found := visit(target, path + [target])):
                return found
        state[module] = 'closed'
        return None

    return next((found for m in sorted(graph) if m not in state and (found := visit(m, [m]))), None)


@pytest.fixture(scope='module')
def project():
    return import_graph({module_name(p): p.read_text(encoding='utf-8') for p in project_sources()})


def test_packages_import_only_packages_below_them(project):
    graph, _ = project
    assert upward_imports(graph) == []


def test_no_modules_import_each_other(project):
    graph, _ = project
    assert circle(graph) is None


def test_no_project_module_is_imported_inside_a_function(project):
    _, nested = project
    assert nested == []


def test_the_checks_catch_an_upward_import_a_circle_and_a_hidden_import():
    files = {'utils.a': 'from models.m import f\n', 'models.m': 'import models.n\n', 'models.n': 'from models import m\n',
             'models': '', 'speculative.s': 'def g():\n    from speculative.t import h\n', 'speculative.t': ''}
    graph, nested = import_graph(files)
    assert upward_imports(graph) == [('utils.a', 'models.m')]
    assert circle(graph) in (['models.m', 'models.n', 'models.m'], ['models.n', 'models.m', 'models.n'])
    assert nested == [('speculative.s', 'speculative.t')]
