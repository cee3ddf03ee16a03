"""What today's commands write stays what it was when tests/golden/e2e_outputs.json was recorded (see
tests/e2e_workflow.py): a restructuring of the code must not move a weight, a metric or an acceptance."""
import json
import math
from pathlib import Path

from e2e_workflow import fingerprint

GOLDEN = Path(__file__).resolve().parent / 'golden' / 'e2e_outputs.json'


def as_number(value):
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def differences(found, expected, where='outputs'):
    """Where found differs from expected; numbers (also numeric CSV text) agree to 1e-5 relative."""
    if isinstance(expected, dict) and isinstance(found, dict):
        if set(found) != set(expected):
            return [f"{where}: keys {sorted(set(found) ^ set(expected))} added or missing"]
        return [d for key in expected for d in differences(found[key], expected[key], f"{where}.{key}")]
    if isinstance(expected, list) and isinstance(found, list):
        if len(found) != len(expected):
            return [f"{where}: {len(found)} items, expected {len(expected)}"]
        return [d for i, (f, e) in enumerate(zip(found, expected)) for d in differences(f, e, f"{where}[{i}]")]
    a, b = as_number(found), as_number(expected)
    if a is not None and b is not None and not isinstance(expected, bool):
        same = math.isclose(a, b, rel_tol=1e-5, abs_tol=1e-6) or (math.isnan(a) and math.isnan(b))
        return [] if same else [f"{where}: {found} != {expected}"]
    return [] if found == expected else [f"{where}: {found!r} != {expected!r}"]


def test_the_workflow_writes_what_it_wrote_before():
    problems = differences(fingerprint(), json.loads(GOLDEN.read_text()))
    assert not problems, '\n'.join(problems[:20])


def test_the_comparison_sees_a_changed_weight_and_a_changed_record():
    expected = {'w': {'a.weight': [1.0, 2.0]}, 'records': [{'mse': 0.5, 'mode': 'standard'}], 'csv': [{'r': '0.25'}]}
    assert differences(expected, expected) == []
    assert differences({**expected, 'w': {'a.weight': [1.0, 2.001]}}, expected)
    assert differences({**expected, 'records': [{'mse': 0.5, 'mode': 'speculative'}]}, expected)
    assert differences({**expected, 'csv': [{'r': '0.2500001'}]}, expected) == []
    assert differences({**expected, 'csv': []}, expected)
    assert differences({**expected, 'csv': [{'r': 'nan'}]}, expected)
