-- 0011: an index on the sales still pending, for the merchant's sweep (docs/merchant.md, The sale, step 9).
--
-- Since the update of a sale to recorded is written behind its answer (merchant.mark_behind), a process that dies
-- after answering can leave a pending row whose posting went through, and no client will retry it (the terminal
-- holds its receipt). The merchant sweeps such rows: every few seconds it reads the pending rows older than
-- merchant.pending_sweep_age and asks the wallet for their transactions by key. Pending rows are few at any time;
-- without this index the sweep would scan every sale.
--
-- Safe to run again.

ALTER TABLE sharebuy_merchant.sales ADD INDEX IF NOT EXISTS sales_pending (state, recorded_ms);
