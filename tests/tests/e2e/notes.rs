//! Notes are event-sourced: the notes projector owns the table, and migration 0013 appended the
//! edits and deletions that older versions made to the table alone.

use omnistream_projections::NotesProjector;
use reqwest::StatusCode;
use serde_json::json;

use crate::whatsapp::{spine, Spine};

/// A database whose notes were edited and deleted in the table only (as before notes were
/// event-sourced) is reconciled by migration 0013's statement: the log gains the missing
/// NoteEdited/NoteDeleted events, and rebuilding the notes table from the log gives the table
/// as it was.
#[tokio::test]
async fn table_only_note_changes_are_appended_to_the_log_and_a_rebuild_matches() {
    let Spine { app, admin, .. } = spine("200000000000031").await;
    let api = admin.client(&app);
    let webhook = omnistream_tests::fake_meta::whatsapp_text_webhook(
        "200000000000031",
        "62800031",
        "Customer",
        "wamid.N1",
        "hello",
        chrono::Utc::now().timestamp(),
    );
    app.post_meta_webhook(&webhook).await;
    let inbox = app
        .eventually(&api, "/api/conversations", |b| {
            b["data"].as_array().is_some_and(|d| !d.is_empty())
        })
        .await;
    let id = inbox["data"][0]["id"].as_str().unwrap().to_owned();
    let mut notes = Vec::new();
    for content in [
        "kept",
        "edited behind the log's back",
        "deleted behind the log's back",
    ] {
        let created = api
            .post(
                &format!("/api/conversations/{id}/notes"),
                json!({ "content": content }),
            )
            .await;
        assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
        notes.push(created.body["id"].as_str().unwrap().to_owned());
    }
    // What the old code did: change the table, no event.
    sqlx::query("UPDATE notes SET content = 'changed', updated_at = now() WHERE id = $1::uuid")
        .bind(&notes[1])
        .execute(&app.pool)
        .await
        .unwrap();
    sqlx::query("DELETE FROM notes WHERE id = $1::uuid")
        .bind(&notes[2])
        .execute(&app.pool)
        .await
        .unwrap();
    let table = |pool: sqlx::PgPool| async move {
        sqlx::query_as::<_, (uuid::Uuid, String)>("SELECT id, content FROM notes ORDER BY id")
            .fetch_all(&pool)
            .await
            .unwrap()
    };
    let before = table(app.pool.clone()).await;

    sqlx::raw_sql(include_str!("../../../migrations/0013_note_events.sql"))
        .execute(&app.pool)
        .await
        .unwrap();
    let history = api
        .get(&format!("/api/conversations/{id}/events?per_page=100"))
        .await
        .body;
    let types: Vec<&str> = history["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event_type"].as_str().unwrap())
        .filter(|t| t.starts_with("Note"))
        .collect();
    let count = |name: &str| types.iter().filter(|t| **t == name).count();
    assert_eq!(count("NoteAdded"), 3, "{types:?}");
    assert_eq!(count("NoteEdited"), 1, "{types:?}");
    assert_eq!(count("NoteDeleted"), 1, "{types:?}");

    omnistream_projections::replay::replay(&app.pool, &NotesProjector)
        .await
        .unwrap();
    // A transaction open elsewhere on the server can hold the replay short of the log's end; the
    // live projector then carries on from the replay's checkpoint.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let rebuilt = table(app.pool.clone()).await;
        if rebuilt == before {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the log rebuilds the table as it was: {rebuilt:?} vs {before:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}
