-- Wake-ups instead of sleeps: when rows arrive in a queue, its channel is notified once per
-- statement (PostgreSQL folds repeats within a transaction and delivers them at commit), and
-- every process listening wakes the stage that works that queue (commands::infra::wakeup).

CREATE FUNCTION omnistream_notify() RETURNS trigger
    LANGUAGE plpgsql AS
$$
BEGIN
    PERFORM pg_notify(TG_ARGV[0], '');
    RETURN NULL;
END
$$;

CREATE TRIGGER events_wakeup AFTER INSERT ON events
    FOR EACH STATEMENT EXECUTE FUNCTION omnistream_notify('omnistream_events');
CREATE TRIGGER inbound_webhooks_wakeup AFTER INSERT ON inbound_webhooks
    FOR EACH STATEMENT EXECUTE FUNCTION omnistream_notify('omnistream_inbound');
CREATE TRIGGER outbound_jobs_wakeup AFTER INSERT ON outbound_jobs
    FOR EACH STATEMENT EXECUTE FUNCTION omnistream_notify('omnistream_outbound');
