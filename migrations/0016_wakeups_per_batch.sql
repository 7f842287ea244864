-- A NOTIFY makes its transaction take PostgreSQL's notification-queue lock at commit, so every
-- committing transaction that notifies waits for the others. One per webhook ack and one per
-- command (the triggers of 0015 on inbound_webhooks and events) cut the acknowledged webhook
-- rate in half in the benchmark (B1: 2,000/s before, 1,000/s with them). Only the outbound
-- queue, written a projector batch at a time, keeps its trigger; stored webhooks and new events
-- wake stages of the same process directly and other processes poll.
DROP TRIGGER events_wakeup ON events;
DROP TRIGGER inbound_webhooks_wakeup ON inbound_webhooks;
