"""`steward_ledger_chain`: the chain head locked, a batch of records chained and the head moved
in the server, for `governance.ledger`'s deferred appends on PostgreSQL (one statement instead
of a round trip to this process under the lock). SQLite chains in Python and needs nothing."""

from django.db import migrations

CREATE = r"""
CREATE OR REPLACE FUNCTION steward_ledger_chain(p_chain text, p_before text[], p_after text[])
RETURNS TABLE (o_n integer, o_seq bigint, o_prev_hash varchar, o_hash varchar, o_canonical text)
LANGUAGE plpgsql AS $$
-- Record i's canonical text is p_before[i] || its seq || p_after[i] (ledger.py says why the
-- seq is all that is missing); hash = SHA-256(prev hash bytes || canonical UTF-8 bytes), hex.
DECLARE
    head_seq bigint;
    head_hash varchar;
    head_bytes bytea;
    total integer := coalesce(array_length(p_before, 1), 0);
BEGIN
    IF total <> coalesce(array_length(p_after, 1), 0) THEN
        RAISE EXCEPTION 'steward_ledger_chain: % texts before the seq, % after',
            total, coalesce(array_length(p_after, 1), 0);
    END IF;
    SELECT h.seq, h.hash INTO head_seq, head_hash
        FROM governance_ledgerhead h WHERE h.chain = p_chain FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'the ledger head row is missing: run `python manage.py migrate`';
    END IF;
    head_bytes := decode(head_hash, 'hex');
    FOR i IN 1 .. total LOOP
        o_n := i;
        o_seq := head_seq + i;
        o_prev_hash := head_hash;
        o_canonical := p_before[i] || o_seq::text || p_after[i];
        head_bytes := sha256(head_bytes || convert_to(o_canonical, 'UTF8'));
        head_hash := encode(head_bytes, 'hex');
        o_hash := head_hash;
        RETURN NEXT;
    END LOOP;
    UPDATE governance_ledgerhead h SET seq = head_seq + total, hash = head_hash
        WHERE h.chain = p_chain;
END
$$;
"""
DROP = "DROP FUNCTION IF EXISTS steward_ledger_chain(text, text[], text[])"


def create(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE, params=None)


def drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP, params=None)


class Migration(migrations.Migration):
    dependencies = [
        ("governance", "0008_export_expired"),
    ]

    operations = [migrations.RunPython(create, drop)]
