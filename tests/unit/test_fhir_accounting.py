"""No loss is silent, whatever the export: every resource read is counted once, as kept or dropped with a
reason, and no shape of hostile input escapes as a traceback. The real IPS documents are mutated at random
(fields removed, replaced by other JSON values) and read back."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from continuity.fhir import ImportReport, read_records
from continuity.import_report import DROP_REASONS

IPS = Path(__file__).parent.parent / "data" / "fhir-ips"
DOCUMENTS = {path.name: json.loads(path.read_text(encoding="utf-8")) for path in sorted(IPS.glob("*.json"))}

scalars = st.none() | st.booleans() | st.integers(-5, 5) | st.text(max_size=12)
fhir_words = st.sampled_from(["unknown", "#x", "urn:uuid:0", "Patient/x", "resolved", "refuted"])
keys = st.sampled_from(["reference", "text", "code", "coding", "display", "system"])
json_values = st.recursive(
    scalars | fhir_words,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(keys, children, max_size=3),
    max_leaves=6,
)


def paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix] if prefix else []
    if isinstance(node, dict):
        for key, value in node.items():
            found += paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += paths(value, (*prefix, index))
    return found


@st.composite
def mutated_documents(draw: st.DrawFn) -> Any:
    name = draw(st.sampled_from(sorted(DOCUMENTS)))
    document = copy.deepcopy(DOCUMENTS[name])
    candidates = [p for p in paths(document) if len(p) >= 4]  # inside an entry's resource
    for _ in range(draw(st.integers(1, 6))):
        path = draw(st.sampled_from(candidates))
        parent = document
        try:
            for step in path[:-1]:
                parent = parent[step]
            if draw(st.booleans()) and isinstance(parent, dict):
                parent.pop(path[-1], None)
            else:
                parent[path[-1]] = draw(json_values)
        except (KeyError, IndexError, TypeError):
            continue  # an earlier mutation removed or replaced the way there
    return document


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(document=mutated_documents())
def test_every_resource_read_is_kept_or_dropped_with_a_reason(tmp_path: Path, document: Any) -> None:
    path = tmp_path / "mutated.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    report = ImportReport()
    records = list(read_records([path], report=report, workers=1))
    for resource_type, counts in report.types.items():
        assert counts.read == counts.kept + sum(counts.dropped.values()), resource_type
        assert set(counts.dropped) <= set(DROP_REASONS)
    assert sum(report.counts.values()) == len(records)
    assert all(problem.reason in DROP_REASONS for problem in report.problems)
