//! The PostgreSQL server the tests start (support/postgres.rs) is trustworthy for what the
//! scale-out tests will claim: what it committed survives a crash of the whole server.

use crate::support::Postgres;

#[tokio::test]
async fn the_test_postgresql_keeps_every_committed_row_across_a_kill_9() {
    let mut pg = Postgres::start().await;
    pg.psql("CREATE TABLE selfcheck (n integer PRIMARY KEY)");
    // 200 transactions of 50 rows, each committed (synchronous_commit and fsync as shipped)
    let inserts: Vec<String> = (0..200)
        .map(|t| {
            format!(
                "INSERT INTO selfcheck SELECT generate_series({}, {})",
                t * 50 + 1,
                t * 50 + 50
            )
        })
        .collect();
    pg.psql(&inserts.join(";\n"));
    assert_eq!(pg.psql("SHOW synchronous_commit"), "on");
    assert_eq!(pg.psql("SHOW fsync"), "on");
    pg.kill9().await;
    pg.restart().await;
    let log = pg.log();
    assert!(
        log.contains("not properly shut down; automatic recovery in progress"),
        "the server was killed, not stopped:\n{log}"
    );
    assert_eq!(
        pg.psql("SELECT count(*), min(n), max(n) FROM selfcheck"),
        "10000|1|10000",
        "the test PostgreSQL lost committed rows in a crash: tests that claim nothing is lost cannot rely on it"
    );
}
