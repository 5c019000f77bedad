//! Gateways on PostgreSQL (`--db`): one gateway, then `--replicas` gateways sharing one fresh
//! database each on the server at the URL, loaded like the embedded gateway (the connections
//! spread over the replicas); their events/s and p99 as a ratio of the embedded gateway's in
//! the same run, PostgreSQL's share of the CPU, and bytes per event in the database.

use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use hdrhistogram::Histogram;
use tokio_postgres::{Client, NoTls};

use crate::gateway::{Spawned, cpu_time_of};
use crate::report;
use crate::workload::{Request, RunResult, Target};

/// Gateways sharing one database.
struct Set {
    database: String,
    gateways: Vec<Spawned>,
    targets: Vec<Target>,
    event: Request,
}

/// The gateway sets on PostgreSQL and a connection to the server.
pub struct Replicated {
    url: String,
    admin: Client,
    sets: Vec<Set>,
}

/// `url` with database `name` instead of its own.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = url.split_once('?').unwrap_or((url, ""));
    let server = match base.rsplit_once('/') {
        Some((server, _)) if server.contains("://") && !server.ends_with('/') => server,
        _ => base.trim_end_matches('/'),
    };
    match query {
        "" => format!("{server}/{name}"),
        query => format!("{server}/{name}?{query}"),
    }
}

/// CPU time every `postgres` process of this machine has used so far.
fn postgres_cpu() -> anyhow::Result<Duration> {
    let mut total = Duration::ZERO;
    for entry in std::fs::read_dir("/proc")? {
        let Ok(pid) = entry?.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        if comm.trim() == "postgres" {
            // a backend may exit meanwhile
            total += cpu_time_of(pid).unwrap_or_default();
        }
    }
    Ok(total)
}

impl Replicated {
    /// Makes a database for one gateway and one for `replicas` gateways on the server at
    /// `url`, and starts the gateways.
    pub async fn start(
        bin: &Path,
        url: &str,
        replicas: usize,
        payload_bytes: usize,
        token: Option<String>,
    ) -> anyhow::Result<Self> {
        let (admin, connection) = url
            .parse::<tokio_postgres::Config>()
            .context("--db is not a PostgreSQL URL")?
            .connect(NoTls)
            .await
            .with_context(|| format!("cannot connect to {url}"))?;
        tokio::spawn(connection);
        let mut sets = Vec::new();
        let counts: &[usize] = match replicas {
            1 => &[1],
            n => &[1, n],
        };
        for &n in counts {
            let database = format!("epr_loadgen_{}_{n}", std::process::id());
            admin
                .batch_execute(&format!("CREATE DATABASE {database}"))
                .await
                .with_context(|| format!("cannot create database {database}"))?;
            let env = [("EPR_DB", with_database(url, &database))];
            let mut gateways = Vec::new();
            for _ in 0..n {
                gateways.push(Spawned::start(bin, &env).await?);
            }
            let mut targets = Vec::new();
            for gateway in &gateways {
                targets.push(Target::connect(&gateway.url, token.clone()).await?);
            }
            let receiver = targets[0].create_receiver().await?;
            sets.push(Set {
                database,
                gateways,
                targets,
                event: Request::event(&receiver, payload_bytes),
            });
        }
        Ok(Replicated {
            url: url.to_owned(),
            admin,
            sets,
        })
    }

    /// Loads each set with `concurrency` connections in all for `duration` and prints it
    /// beside `embedded`, the embedded gateway's phase.
    pub async fn run(
        &self,
        (concurrency, duration, rate): (usize, Duration, Option<f64>),
        embedded: &RunResult,
    ) -> anyhow::Result<()> {
        for set in &self.sets {
            let replicas = set.targets.len();
            let cpu = |set: &Set| -> anyhow::Result<(Duration, Duration)> {
                let mut gateways = Duration::ZERO;
                for g in &set.gateways {
                    gateways += g.cpu_time()?;
                }
                Ok((gateways, postgres_cpu()?))
            };
            let before = cpu(set)?;
            let loads = set.targets.iter().enumerate().map(|(i, target)| {
                // the connections spread over the replicas
                let share = concurrency / replicas + usize::from(i < concurrency % replicas);
                let rate = rate.map(|r| r * share as f64 / concurrency as f64);
                target.run(&set.event, share.max(1), duration, rate)
            });
            let mut result = RunResult {
                ok: 0,
                failed: 0,
                elapsed: Duration::ZERO,
                latency_us: Histogram::new(3)?,
            };
            for part in futures::future::try_join_all(loads).await? {
                result.ok += part.ok;
                result.failed += part.failed;
                result.elapsed = result.elapsed.max(part.elapsed);
                result.latency_us.add(part.latency_us)?;
            }
            let after = cpu(set)?;
            let name = format!("POST events, PG x{replicas}");
            report::print_named(&name, concurrency, &result, None);
            let (gateway_cpu, pg_cpu) = (after.0 - before.0, after.1 - before.1);
            println!(
                "{:<28} {:>5} events/s / embedded store's = {:.2}; PostgreSQL's share of the CPU = {:.2}",
                "",
                concurrency,
                result.rate() / embedded.rate(),
                pg_cpu.as_secs_f64() / (gateway_cpu + pg_cpu).as_secs_f64().max(1e-9)
            );
        }
        Ok(())
    }

    /// Prints bytes per event and index sizes of each set's database, then drops them.
    pub async fn finish(self) -> anyhow::Result<()> {
        let Replicated { url, admin, sets } = self;
        for set in sets {
            let database = set.database.clone();
            drop(set);
            let (db, connection) = with_database(&url, &database)
                .parse::<tokio_postgres::Config>()?
                .connect(NoTls)
                .await?;
            let connection = tokio::spawn(connection);
            let sizes = db
                .query(
                    "SELECT c.relname, pg_total_relation_size(c.oid)::bigint, c.relkind::text
                     FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                     WHERE n.nspname = 'public' AND c.relname LIKE 'epr_%' AND c.relkind IN ('r', 'i')
                     ORDER BY 2 DESC",
                    &[],
                )
                .await?;
            let events: i64 = db
                .query_one("SELECT count(*) FROM epr_events", &[])
                .await?
                .get(0);
            let total: i64 = db
                .query_one("SELECT pg_database_size(current_database())", &[])
                .await?
                .get(0);
            drop(db);
            connection.abort();
            println!(
                "database {database}: {total} bytes for {events} events = {:.0} bytes/event",
                total as f64 / events.max(1) as f64
            );
            let indexes: Vec<String> = sizes
                .iter()
                .filter(|row| row.get::<_, String>(2) == "i")
                .map(|row| {
                    format!(
                        "{} {:.0}",
                        row.get::<_, String>(0),
                        row.get::<_, i64>(1) as f64 / events.max(1) as f64
                    )
                })
                .collect();
            println!("  index bytes/event: {}", indexes.join(", "));
            admin
                .batch_execute(&format!("DROP DATABASE {database} WITH (FORCE)"))
                .await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn another_database_on_the_same_server() {
        assert_eq!(
            with_database("postgres://epr@db:5432/postgres", "x"),
            "postgres://epr@db:5432/x"
        );
        assert_eq!(
            with_database("postgres://epr:pw@db/postgres?sslmode=disable", "x"),
            "postgres://epr:pw@db/x?sslmode=disable"
        );
        assert_eq!(
            with_database("postgres://epr@db", "x"),
            "postgres://epr@db/x"
        );
    }
}
