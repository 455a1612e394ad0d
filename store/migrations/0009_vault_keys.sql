-- Key rotation (PRODUCT §8.7): every wrapped data key names the key-encryption key (KEK) that
-- wrapped it, by the KEK's id (an HMAC of the key, never the key; the KEK itself is never stored).
-- Rows from before are the bound instance key's; a database not bound yet is backfilled on its
-- first start, once the start's key has been shown to open them.
ALTER TABLE person_keys ADD COLUMN kek_id text;
UPDATE person_keys SET kek_id = (SELECT key_id FROM instance_binding) WHERE kek_id IS NULL;
CREATE INDEX person_keys_kek ON person_keys (kek_id);

-- The KEKs a completed rotation retired: a start (or a write) with one of them is refused.
CREATE TABLE vault_retired_keys (
    key_id     text        PRIMARY KEY,
    retired_at timestamptz NOT NULL DEFAULT now()
);

-- The instance id key: the key of the instance's keyed ids (journey ids, signed answer links, the
-- erasure ledger). Random per database and stored only wrapped under the KEK its row names, so a
-- rotation re-wraps it and every keyed id stays as it was. One row, made on the first start; a
-- database from before it gets the id key its ids were derived from (of the bound KEK, named in
-- `derived_from`, NULL for a random one), so nothing changes for its journeys.
CREATE TABLE vault_id_key (
    singleton    boolean     PRIMARY KEY DEFAULT true CHECK (singleton),
    wrapped_key  bytea       NOT NULL,
    kek_id       text        NOT NULL,
    derived_from text,
    created_at   timestamptz NOT NULL DEFAULT now()
);
