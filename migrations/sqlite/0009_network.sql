-- The network model (issue 18): nodes, links and isolation devices as imported, and which
-- link feeds each customer. A re-import replaces all four tables in one transaction. `seq`
-- keeps the file's order, so the model read back is the model imported. Ids are unique per
-- table (EPANET lets a node and a link share an id). `path` is the link's drawn line as a
-- JSON array of [lon, lat]. Service links name the customer by account id, not row id, so
-- they survive customer re-imports; `distance_m` is NULL when the services file gave the
-- link and the attachment distance when it was the nearest pipe.
CREATE TABLE network_nodes (
    seq  INTEGER NOT NULL UNIQUE,
    id   TEXT    NOT NULL PRIMARY KEY,
    kind TEXT    NOT NULL,
    lon  REAL    NOT NULL,
    lat  REAL    NOT NULL
);
CREATE TABLE network_links (
    seq       INTEGER NOT NULL UNIQUE,
    id        TEXT    NOT NULL PRIMARY KEY,
    kind      TEXT    NOT NULL,
    from_node TEXT    NOT NULL,
    to_node   TEXT    NOT NULL,
    path      TEXT    NOT NULL
);
CREATE TABLE network_devices (
    seq     INTEGER NOT NULL UNIQUE,
    id      TEXT    NOT NULL PRIMARY KEY,
    kind    TEXT    NOT NULL,
    link_id TEXT    NOT NULL,
    node_id TEXT    NOT NULL,
    lon     REAL    NOT NULL,
    lat     REAL    NOT NULL
);
CREATE TABLE service_links (
    account_id TEXT NOT NULL PRIMARY KEY,
    link_id    TEXT NOT NULL,
    distance_m REAL
);
CREATE INDEX service_links_by_link ON service_links (link_id);
