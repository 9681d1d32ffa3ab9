"""The independent answer for tests/topology.rs: EPANET's Net3 (shipped with WNTR), a seeded
random isolation-valve layer, WNTR's valve segments and a networkx source check.

Writes into OUT_DIR:
  net.geojson    the network in outagecast's GeoJSON (coordinates mapped onto lon/lat)
  customers.csv  one customer per pipe, at the pipe's first node
  services.csv   account_id,pipe_id
  expected.json  per trial: the burst pipe, the broken valves, and WNTR's segment pipes,
                 valves to close, dry pipes and affected accounts
  net.inp        (when pyproj is installed) Net3's own .inp with [COORDINATES] and
                 [VERTICES] replaced by net.geojson's lon/lat projected to EPSG:3067
                 (ETRS-TM35FIN) by pyproj, the rest of the file as WNTR ships it
  valves.csv     the same valve layer as id,pipe,node

Usage: python3 net3_isolation.py OUT_DIR [SEED]
"""

import json
import os
import random
import sys

import networkx as nx
import wntr

out = sys.argv[1]
seed = int(sys.argv[2]) if len(sys.argv) > 2 else 20261203
rng = random.Random(seed)

inp = os.path.join(os.path.dirname(wntr.__file__), "library", "networks", "Net3.inp")
wn = wntr.network.WaterNetworkModel(inp)

# A valve next to either end of about two thirds of the pipes' ends, seeded; no duplicates.
pairs = []
for name in wn.pipe_name_list:
    pipe = wn.get_link(name)
    for node in (pipe.start_node_name, pipe.end_node_name):
        if rng.random() < 0.4:
            pairs.append((name, node))
valves = {f"V{i}": pair for i, pair in enumerate(pairs)}

# Net3's coordinates are in plan units; map them onto a box around Helsinki.
xs = [wn.get_node(n).coordinates[0] for n in wn.node_name_list]
ys = [wn.get_node(n).coordinates[1] for n in wn.node_name_list]
scale = 0.1 / max(max(xs) - min(xs), max(ys) - min(ys))


def lonlat(xy):
    return [round(24.8 + (xy[0] - min(xs)) * scale, 7), round(60.1 + (xy[1] - min(ys)) * scale, 7)]


features = []
sources = []
for n in wn.node_name_list:
    node = wn.get_node(n)
    kind = {"Reservoir": "reservoir", "Tank": "tank"}.get(node.node_type, "junction")
    if kind != "junction":
        sources.append(n)
    features.append({"type": "Feature", "properties": {"id": n, "kind": kind},
                     "geometry": {"type": "Point", "coordinates": lonlat(node.coordinates)}})
for name in wn.link_name_list:
    link = wn.get_link(name)
    kind = "pump" if link.link_type == "Pump" else "pipe"
    path = [link.start_node.coordinates] + list(link.vertices) + [link.end_node.coordinates]
    features.append({"type": "Feature",
                     "properties": {"id": name, "kind": kind, "from": link.start_node_name, "to": link.end_node_name},
                     "geometry": {"type": "LineString", "coordinates": [lonlat(p) for p in path]}})
for vid, (link, node) in valves.items():
    features.append({"type": "Feature", "properties": {"id": vid, "kind": "valve", "pipe": link, "node": node},
                     "geometry": {"type": "Point", "coordinates": lonlat(wn.get_node(node).coordinates)}})
with open(os.path.join(out, "net.geojson"), "w") as f:
    json.dump({"type": "FeatureCollection", "features": features}, f)

with open(os.path.join(out, "valves.csv"), "w") as f:
    f.write("id,pipe,node\n")
    for vid, (link, node) in valves.items():
        f.write(f"{vid},{link},{node}\n")

try:
    import pyproj
except ImportError:
    pyproj = None
if pyproj is not None:
    to_tm35fin = pyproj.Transformer.from_crs("EPSG:4326", "EPSG:3067", always_xy=True)

    def projected(xy):
        x, y = to_tm35fin.transform(*lonlat(xy))
        return f"{x:.4f}\t{y:.4f}"

    lines = []
    section = None
    with open(inp, newline="") as f:
        for line in f.read().splitlines():
            stripped = line.split(";")[0].strip()
            if stripped.startswith("["):
                section = stripped.upper()
            elif stripped and section == "[COORDINATES]":
                name = stripped.split()[0]
                line = f" {name}\t{projected(wn.get_node(name).coordinates)}\t; projected"
            elif stripped and section == "[VERTICES]":
                name, x, y = stripped.split()[:3]
                line = f" {name}\t{projected((float(x), float(y)))}"
            lines.append(line)
    with open(os.path.join(out, "net.inp"), "w", newline="") as f:
        f.write("\r\n".join(lines) + "\r\n")

with open(os.path.join(out, "customers.csv"), "w") as f:
    f.write("account_id,lon,lat,address,phone,email,language,priority\n")
    for i, name in enumerate(wn.pipe_name_list):
        lon, lat = lonlat(wn.get_link(name).start_node.coordinates)
        f.write(f"C-{name},{lon},{lat},Pipe {name},+35840{1000000 + i},,en,false\n")
with open(os.path.join(out, "services.csv"), "w") as f:
    f.write("account_id,pipe_id\n")
    for name in wn.pipe_name_list:
        f.write(f"C-{name},{name}\n")

G = wn.to_graph()
uG = G.to_undirected()
segments_cache = {}


def segments(broken):
    key = tuple(sorted(broken))
    if key not in segments_cache:
        import pandas as pd
        working = [(link, node) for vid, (link, node) in valves.items() if vid not in broken]
        layer = pd.DataFrame(working, columns=["link", "node"])
        node_seg, link_seg, _ = wntr.metrics.valve_segments(G, layer)
        segments_cache[key] = (node_seg, link_seg)
    return segments_cache[key]


def trial(pipe, broken):
    node_seg, link_seg = segments(broken)
    s = link_seg[pipe]
    seg_links = {l for l in wn.link_name_list if link_seg[l] == s}
    seg_nodes = {n for n in wn.node_name_list if node_seg[n] == s}
    close = sorted(v for v, (l, n) in valves.items()
                   if v not in broken and (l in seg_links) != (n in seg_nodes))
    # networkx: the network without the segment; a link is fed when one of its end nodes that
    # is still there lies in a component with a reservoir or tank.
    rest = uG.copy()
    rest.remove_edges_from([(u, v, k) for u, v, k in uG.edges(keys=True) if k in seg_links])
    rest.remove_nodes_from(seg_nodes)
    fed = set()
    for component in nx.connected_components(rest):
        if any(src in component for src in sources):
            fed |= component
    dry = sorted(l for l in wn.link_name_list if l not in seg_links
                 and not ({wn.get_link(l).start_node_name, wn.get_link(l).end_node_name} & fed))
    affected = sorted(f"C-{l}" for l in wn.pipe_name_list if l in seg_links or l in dry)
    return {"pipe": pipe, "broken": sorted(broken), "segment_pipes": sorted(seg_links),
            "valves_to_close": close, "dry_pipes": dry, "affected_account_ids": affected}


trials = [trial(p, []) for p in wn.pipe_name_list]
# A broken valve among the ones a trial closes, for as many pipes again: the segment grows.
for t in list(trials):
    if t["valves_to_close"] and rng.random() < 0.85:
        trials.append(trial(t["pipe"], [rng.choice(t["valves_to_close"])]))
with open(os.path.join(out, "expected.json"), "w") as f:
    json.dump({"seed": seed, "valves": len(valves), "trials": trials}, f)
print(f"Net3: {len(wn.pipe_name_list)} pipes, {len(valves)} valves, {len(trials)} trials "
      f"({sum(1 for t in trials if t['broken'])} with a broken valve)")
