//! The README says what is true: its marked shell blocks (`<!-- readme-test -->`, then those of
//! `plugins/README.md`) run in order, as a reader would paste them, against a fresh gateway,
//! and the plugin guide shows the example plugin as it is.

use std::collections::BTreeMap;

use crate::support::Gateway;

/// The repository's root.
const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");

/// The shell blocks of `file` that follow a `<!-- readme-test` line.
fn marked_blocks(file: &str) -> Vec<String> {
    let text = std::fs::read_to_string(format!("{ROOT}/{file}")).expect("readable");
    let mut blocks = Vec::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        if !line.starts_with("<!-- readme-test") {
            continue;
        }
        assert_eq!(
            lines.next(),
            Some("```sh"),
            "{file}: a marked block is a sh block"
        );
        let block: Vec<&str> = lines.by_ref().take_while(|l| *l != "```").collect();
        blocks.push(block.join("\n"));
    }
    blocks
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readmes_marked_blocks_run_in_order_on_a_fresh_gateway() {
    let gw = Gateway::start().await;
    let blocks: Vec<String> = ["README.md", "plugins/README.md"]
        .iter()
        .flat_map(|file| marked_blocks(file))
        .collect();
    assert!(blocks.len() >= 6, "{} marked blocks", blocks.len());
    // every answer's status goes to stderr, to be checked below; background jobs (the
    // endpoint) end with the script, even when it fails; the files the blocks write to /tmp go
    // to a directory of this run (two runs at once would read each other's)
    let scratch = tempfile::tempdir().expect("a scratch directory");
    let script = format!(
        "set -e\ntrap 'kill $(jobs -p) 2>/dev/null || true' EXIT\ncurl() {{ command curl -w '%{{stderr}}HTTP %{{http_code}} %{{method}} %{{url_effective}}\\n' \"$@\"; }}\n{}\n",
        blocks
            .join("\n")
            .replace("http://127.0.0.1:8042", &gw.base)
            .replace("/tmp/", &format!("{}/", scratch.path().display()))
    );
    let output = tokio::process::Command::new("bash")
        .arg("-c")
        .arg(&script)
        .current_dir(ROOT)
        .output()
        .await
        .expect("bash runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the README's blocks failed:\n{stdout}\n{stderr}"
    );
    let answers: Vec<(u16, &str)> = stderr
        .lines()
        .filter_map(|l| l.strip_prefix("HTTP "))
        .map(|l| {
            let (code, rest) = l.split_once(' ').expect("code and request");
            (code.parse().expect("a status"), rest)
        })
        .collect();
    let mut by_status: BTreeMap<u16, usize> = BTreeMap::new();
    for (code, _) in &answers {
        *by_status.entry(*code).or_default() += 1;
    }
    let refused: Vec<&(u16, &str)> = answers.iter().filter(|(c, _)| *c >= 400).collect();
    assert_eq!(
        refused.len(),
        1,
        "only the tour's invalid payload is refused: {refused:?} (all: {by_status:?})"
    );
    assert_eq!(refused[0].0, 400);
    assert!(refused[0].1.ends_with("/api/v1/events"), "{refused:?}");
    assert!(
        answers.len() >= 25,
        "every block ran: {} answers",
        answers.len()
    );
    // what the blocks say happens, happened
    assert!(
        stdout.contains("event payload did not match event receiver schema"),
        "{stdout}"
    );
    assert!(
        stdout.contains(r#""text":"the 2 latest messages, newest first""#),
        "the MCP call answered:\n{stdout}"
    );
    assert!(
        stdout.contains("dev.cdevents.build.finished 01"),
        "the webhook firer reached the endpoint:\n{stdout}"
    );
    // a watcher runs after the answer to the post: on a busy machine (or PostgreSQL, where it
    // first takes its lease) the failed build may not be handled yet when the blocks end
    let mut plugins = Vec::new();
    for _ in 0..300 {
        let (_, listed) = gw.get("/api/v1/plugins").await;
        plugins = listed["data"].as_array().expect("plugins").clone();
        if plugins.len() != 1 || plugins[0]["calls"] != 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(plugins.len(), 1, "the firer was deleted: {plugins:?}");
    assert_eq!(plugins[0]["name"], "failed-builds");
    assert_eq!(plugins[0]["calls"], 1, "{}", plugins[0]);
    assert_eq!(plugins[0]["failures"], 0, "{}", plugins[0]);
    let (_, sources) = gw.get("/api/v1/webhooks").await;
    assert!(
        !sources.to_string().contains("tekton"),
        "the webhook source was deleted again: {sources}"
    );
}

#[test]
fn the_plugin_guide_shows_the_example_plugin_as_it_is() {
    let guide = std::fs::read_to_string(format!("{ROOT}/plugins/README.md")).expect("readable");
    let after = guide
        .split_once("<!-- plugin-guide")
        .expect("the guide marks its example")
        .1;
    let code = after
        .split_once("```rust\n")
        .and_then(|(_, rest)| rest.split_once("```"))
        .expect("a rust block")
        .0;
    let source = std::fs::read_to_string(format!("{ROOT}/plugins/failed-builds/src/lib.rs"))
        .expect("readable");
    assert_eq!(
        code, source,
        "plugins/README.md and failed-builds/src/lib.rs differ"
    );
}
