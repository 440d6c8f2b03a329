//! Credentials in a real PostgreSQL: made, found by token, refused when wrong, revoked.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use access::*;
use eventlog::Database;
use pgcluster::testdb::TestDb;

async fn db() -> Database {
    let t = TestDb::new().await.unwrap();
    let db = Database::new(&t.url, 4).unwrap();
    migrate(&db).await.unwrap();
    migrate(&db).await.unwrap();
    db
}

#[tokio::test]
async fn a_token_is_shown_once_stored_hashed_and_proves_its_credential() {
    let db = db().await;
    let (made, token) = create(&db, Role::Forwarder, Scope::plant(3), "forwarder P3").await.unwrap();
    assert!(token.starts_with(TOKEN_PREFIX));
    let client = db.client().await.unwrap();
    let stored: String = client.query_one("SELECT secret_sha256 FROM access.credentials", &[]).await.unwrap().get(0);
    assert!(!token.contains(&stored), "the stored hash is not part of the token");
    let dump: String =
        client.query_one("SELECT row_to_json(c)::text FROM access.credentials c", &[]).await.unwrap().get(0);
    assert!(!dump.contains(token.rsplit('_').next().unwrap()), "the secret is stored nowhere");

    let found = authenticate(&client, &token).await.unwrap().unwrap();
    assert_eq!(found, made);
    assert_eq!(found.scope, Scope::plant(3));
    // A changed secret, a made-up id, garbage, hostile strings: no credential, no error.
    let mut wrong = token.clone();
    wrong.pop();
    wrong.push(if token.ends_with('0') { '1' } else { '0' });
    let unknown = format!("fwt_{}_{}", "0".repeat(16), "0".repeat(64));
    for bad in
        [wrong.as_str(), unknown.as_str(), "", "Bearer x", "fwt_'; DROP TABLE access.credentials; --", "\0\u{fffd}"]
    {
        assert_eq!(authenticate(&client, bad).await.unwrap(), None, "{bad:?}");
    }
}

#[tokio::test]
async fn a_revoked_credential_is_marked_and_the_authenticator_forgets_it_after_its_ttl() {
    let db = db().await;
    let (viewer, token) = create(&db, Role::Viewer, Scope::plant(1), "Vic").await.unwrap();
    let auth = Authenticator::new(db.clone(), Duration::from_millis(200));
    assert_eq!(auth.authenticate(&token).await.unwrap().unwrap().id, viewer.id);
    assert!(revoke(&db, &viewer.id).await.unwrap());
    assert!(!revoke(&db, &viewer.id).await.unwrap(), "revoking twice changes nothing");
    tokio::time::sleep(Duration::from_millis(250)).await;
    let after = auth.authenticate(&token).await.unwrap().unwrap();
    assert!(after.revoked_at.is_some());
    assert_eq!(after.authorize(Permission::ReadPlantData, Some(1)), Err(Denied::Revoked));
    assert_eq!(list(&db).await.unwrap().len(), 1);
}

#[tokio::test]
async fn credentials_that_do_not_fit_their_role_are_not_made() {
    let db = db().await;
    assert!(matches!(create(&db, Role::Manager, Scope::plant(1), "Mia").await, Err(AccessError::Scope(_))));
    assert!(matches!(create(&db, Role::Viewer, Scope::plant(1), "").await, Err(AccessError::Label)));
    assert!(list(&db).await.unwrap().is_empty());
}
