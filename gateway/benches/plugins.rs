//! Cost of plugin calls: one transform call and one watcher call on a 1 KiB event against a
//! native Rust function doing the same work, instantiation, and loading a precompiled plugin.
//! Needs the plugins built (`tests/run` builds them). Run: `cargo bench -p epr-gateway --bench plugins`.

#![allow(clippy::unwrap_used)] // a benchmark fails by panicking

use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use epr_gateway::plugins::bindings::wit_types;
use epr_gateway::plugins::compile;
use epr_gateway::plugins::engine::PluginEngine;
use epr_gateway::plugins::grants::Grants;
use epr_gateway::plugins::instance::Loaded;
use epr_gateway::plugins::model::World;
use epr_gateway::plugins::sandbox::{HostAccess, Permissions, Services};
use epr_gateway::registry::Registry;
use epr_gateway::registry::port::Store;
use epr_gateway::store::{SledOptions, SledStore};

fn wasm(crate_name: &str) -> Vec<u8> {
    let path = format!(
        "{}/../plugins/target/wasm32-wasip2/release/{crate_name}.wasm",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}: build the plugins first"))
}

/// A stored event with a 1 KiB payload.
fn event() -> wit_types::Event {
    let payload = serde_json::json!({"log": "x".repeat(1000)}).to_string();
    wit_types::Event {
        id: "01JBENCH0000000000000000000".into(),
        receiver_id: "01JRECEIVER000000000000000".into(),
        receiver_type: "test.hostile.bench".into(),
        nvrpp: wit_types::Nvrpp {
            name: "shop-api".into(),
            version: "1.2.3".into(),
            release: "2026.11".into(),
            platform_id: "linux".into(),
            package: "oci".into(),
        },
        success: true,
        description: "pass".into(),
        payload,
        created_at: "2026-11-23T10:00:00Z".into(),
        cloudevent: None,
        caused_by: None,
    }
}

/// What the hostile-transform fixture does to an ordinary event, natively.
fn native_transform(event: &wit_types::Event) -> Vec<wit_types::Event> {
    let mut out = event.clone();
    out.description.push_str(" (transformed)");
    vec![out]
}

fn link(engine: &Arc<PluginEngine>, crate_name: &str) -> Loaded {
    compile::compile(engine, &wasm(crate_name))
        .expect("compiles")
        .linked
}

fn plugin_calls(c: &mut Criterion) {
    let engine = PluginEngine::new().expect("engine");
    let event = event();
    let transform = link(&engine, "hostile_transform");
    let watcher = link(&engine, "hostile_watcher");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store =
        Arc::new(SledStore::open(dir.path(), &SledOptions::default()).unwrap()) as Arc<dyn Store>;
    let services = Arc::new(Services {
        registry: Arc::new(runtime.block_on(Registry::new(store)).unwrap()),
        http: reqwest::Client::new(),
        runtime: runtime.handle().clone(),
        kv_usage: Default::default(),
    });
    let permissions = Arc::new(Permissions::new(Grants::default(), &[]));
    let access = || HostAccess {
        services: services.clone(),
        permissions: permissions.clone(),
        cause: event.id.clone(),
        emitted: 0,
    };

    let mut group = c.benchmark_group("call on a 1 KiB event");
    group.bench_function("native function (baseline)", |b| {
        b.iter(|| native_transform(std::hint::black_box(&event)))
    });
    group.bench_function("transform, warm instance", |b| {
        b.iter(|| transform.transform(&event).unwrap())
    });
    group.bench_function("watcher, warm instance", |b| {
        b.iter(|| watcher.watch(&event, access()).unwrap())
    });
    group.finish();

    let bytes = wasm("webhook_firer");
    let compiled = compile::compile(&engine, &bytes).unwrap();
    let artifact = compile::serialize(&compiled.component).unwrap();
    let mut group = c.benchmark_group("plugin lifecycle");
    group.bench_function("link + instantiate + describe", |b| {
        b.iter(|| {
            Loaded::link(&engine, World::Watcher, &compiled.component)
                .unwrap()
                .describe()
                .unwrap()
        })
    });
    group.bench_function("load the precompiled artifact", |b| {
        b.iter(|| compile::deserialize(&engine, &artifact).unwrap())
    });
    group.sample_size(10);
    group.bench_function("check and compile the component", |b| {
        b.iter(|| compile::compile(&engine, &bytes).unwrap())
    });
    group.finish();
}

criterion_group!(benches, plugin_calls);
criterion_main!(benches);
