"""The movement engine's shared parts: one ordered list of refusals and one text of the SQL function.

``codes`` is the list of refusals in precedence order and the table from code
to exception (both databases); ``sql/movements.sql`` is the only text of
``ledgerx_movement_create``, which ``postgres`` calls by named arguments from
one parameter table.
"""
