-- Notes become event-sourced (issue 13): the conversation stream records NoteEdited and
-- NoteDeleted, and the notes projector owns the `notes` table. Edits and deletions made before
-- this change touched only the table; they are appended to their conversations' streams now, so
-- the log tells the truth and a replay of the notes projector rebuilds the table as it is.
WITH added AS (
    SELECT e.aggregate_id,
           (e.payload -> 'NoteAdded' ->> 'note_id')::uuid AS note_id,
           e.payload -> 'NoteAdded' ->> 'agent_id'        AS agent_id,
           e.payload -> 'NoteAdded' ->> 'content'         AS content
    FROM events e
    WHERE e.aggregate_type = 'Conversation' AND e.event_type = 'NoteAdded'
),
changed AS (
    SELECT a.aggregate_id, a.note_id, a.agent_id, n.id IS NULL AS deleted, n.content, n.updated_at
    FROM added a
    LEFT JOIN notes n ON n.id = a.note_id
    WHERE n.id IS NULL OR n.content IS DISTINCT FROM a.content
),
numbered AS (
    SELECT c.*,
           (SELECT max(e.sequence) FROM events e
            WHERE e.aggregate_type = 'Conversation' AND e.aggregate_id = c.aggregate_id)
             + row_number() OVER (PARTITION BY c.aggregate_id ORDER BY c.note_id) AS sequence
    FROM changed c
)
INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
SELECT 'Conversation',
       aggregate_id,
       sequence,
       CASE WHEN deleted THEN 'NoteDeleted' ELSE 'NoteEdited' END,
       '1.0',
       CASE WHEN deleted
           THEN jsonb_build_object('NoteDeleted', jsonb_build_object(
                    'note_id', note_id, 'agent_id', agent_id,
                    'at', to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')))
           ELSE jsonb_build_object('NoteEdited', jsonb_build_object(
                    'note_id', note_id, 'agent_id', agent_id, 'content', content,
                    'at', to_char(updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')))
       END,
       jsonb_build_object('tenant_id', split_part(aggregate_id, ':', 1), 'actor_type', 'system',
                          'causation_id', 'migration:0013_note_events',
                          'occurred_at', to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'))
FROM numbered;
