"""Minimal replay of a Delta log's JSON commits (every test table keeps all its JSON commits).

Gives the expected protocol/metaData actions and the active add actions at a version, exactly as
written in the log -- used for wire-level expectations (file counts, ids = hash of `add.path`,
schema strings, protocol feature lists in log order).
"""
import json
import os


def _commits(table_path):
    log = os.path.join(table_path, "_delta_log")
    out = []
    for name in os.listdir(log):
        if len(name) == 25 and name.endswith(".json") and name[:20].isdigit():
            out.append((int(name[:20]), os.path.join(log, name)))
    return sorted(out)


def _dv_id(dv):
    if not dv:
        return None
    return (dv.get("storageType"), dv.get("pathOrInlineDv"), dv.get("offset"))


class LogState:
    def __init__(self, version, protocol, metadata, adds):
        self.version = version
        self.protocol = protocol
        self.metadata = metadata
        self.adds = adds  # list of add action dicts (active files)

    @property
    def schema(self):
        return json.loads(self.metadata["schemaString"])


def replay(table_path, version=None):
    protocol = metadata = None
    active = {}
    last = None
    for v, path in _commits(table_path):
        if version is not None and v > version:
            break
        last = v
        with open(path) as fh:
            for line in fh:
                line = line.strip()
                if not line:
                    continue
                action = json.loads(line)
                if "protocol" in action:
                    protocol = action["protocol"]
                elif "metaData" in action:
                    metadata = action["metaData"]
                elif "add" in action:
                    a = action["add"]
                    active[(a["path"], _dv_id(a.get("deletionVector")))] = a
                elif "remove" in action:
                    r = action["remove"]
                    active.pop((r["path"], _dv_id(r.get("deletionVector"))), None)
    if last is None:
        raise ValueError(f"no JSON commits in {table_path}")
    return LogState(last, protocol, metadata, list(active.values()))


def num_records(add):
    if not add.get("stats"):
        return None
    try:
        return json.loads(add["stats"]).get("numRecords")
    except ValueError:
        return None
