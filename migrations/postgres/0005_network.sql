-- The network model (issue 18); see migrations/sqlite/0009_network.sql.
CREATE TABLE network_nodes (
    seq  bigint           NOT NULL UNIQUE,
    id   text             NOT NULL PRIMARY KEY,
    kind text             NOT NULL,
    lon  double precision NOT NULL,
    lat  double precision NOT NULL
);
CREATE TABLE network_links (
    seq       bigint NOT NULL UNIQUE,
    id        text   NOT NULL PRIMARY KEY,
    kind      text   NOT NULL,
    from_node text   NOT NULL,
    to_node   text   NOT NULL,
    path      jsonb  NOT NULL
);
CREATE TABLE network_devices (
    seq     bigint           NOT NULL UNIQUE,
    id      text             NOT NULL PRIMARY KEY,
    kind    text             NOT NULL,
    link_id text             NOT NULL,
    node_id text             NOT NULL,
    lon     double precision NOT NULL,
    lat     double precision NOT NULL
);
CREATE TABLE service_links (
    account_id text NOT NULL PRIMARY KEY,
    link_id    text NOT NULL,
    distance_m double precision
);
CREATE INDEX service_links_by_link ON service_links (link_id);
