-- The databases of stock and payment beside the orchestrator's (POSTGRES_DB), owned by
-- the ordersaga login (POSTGRES_USER). Run once, on an empty volume.
CREATE DATABASE stock OWNER ordersaga;
CREATE DATABASE payment OWNER ordersaga;
