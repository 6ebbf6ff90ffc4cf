"""The movement engine's shared parts: one ordered list of refusals and one text of each SQL function.

``codes`` is the list of refusals in precedence order, the table from code to
exception and the item refusals' messages (both databases);
``sql/movements.sql`` is the only text of ``ledgerx_movement_create`` (a
single movement) and ``sql/batches.sql`` that of ``ledgerx_batch_apply`` (a
batch, or one conversion), which ``postgres`` calls by named arguments, each
from one parameter table.
"""
