//! Checking and compiling an uploaded component, and loading a precompiled one.

use std::sync::Arc;

use wasmtime::component::Component;

use super::engine::PluginEngine;
use super::error::PluginError;
use super::instance::Loaded;
use super::model::{Manifest, Subscription, World, capability_name};

/// An uploaded component, checked and compiled.
pub struct Compiled {
    /// Its world.
    pub world: World,
    /// Its manifest.
    pub manifest: Manifest,
    /// The compiled component.
    pub component: Component,
    /// It, linked (with the default limits).
    pub linked: Loaded,
}

/// The first bytes of every WebAssembly binary.
const WASM_MAGIC: &[u8] = b"\0asm";
/// The version field of a core module (a component has another).
const CORE_MODULE_VERSION: [u8; 4] = [1, 0, 0, 0];

/// Checks and compiles `bytes` (slow: tens of ms; run it off the request path): it must be a
/// component for one of the two worlds, importing only what the host offers, with a manifest
/// that names it.
pub fn compile(engine: &Arc<PluginEngine>, bytes: &[u8]) -> Result<Compiled, PluginError> {
    if !bytes.starts_with(WASM_MAGIC) {
        return Err(PluginError::Invalid(
            "the body is not WebAssembly (no \\0asm header): send the .wasm component as application/wasm".into(),
        ));
    }
    if bytes.get(4..8) == Some(&CORE_MODULE_VERSION[..]) {
        return Err(PluginError::Invalid(
            "the body is a core WebAssembly module, not a component: build for wasm32-wasip2 (or wrap it with `wasm-tools component new`)".into(),
        ));
    }
    let component = Component::new(&engine.engine, bytes)
        .map_err(|e| PluginError::Invalid(format!("the component does not compile: {e:#}")))?;
    let world = world_of(engine, &component)?;
    let linked = Loaded::link(engine, world, &component)?;
    let manifest = describe(&linked)?;
    Ok(Compiled {
        world,
        manifest,
        component,
        linked,
    })
}

/// The world `component` targets, by what it exports.
fn world_of(engine: &PluginEngine, component: &Component) -> Result<World, PluginError> {
    let ty = component.component_type();
    let exports: Vec<&str> = ty.exports(&engine.engine).map(|(name, _)| name).collect();
    match (exports.contains(&"on-event"), exports.contains(&"handle")) {
        (true, false) => Ok(World::Watcher),
        (false, true) => Ok(World::Transform),
        (true, true) => Err(PluginError::Invalid(
            "the component exports both on-event and handle: a plugin is a watcher or a transform, not both".into(),
        )),
        (false, false) => Err(PluginError::Invalid(format!(
            "the component is for neither world of epr:plugin@0.2.0: a watcher exports on-event, a transform exports handle (it exports: {})",
            if exports.is_empty() { "nothing".to_owned() } else { exports.join(", ") }
        ))),
    }
}

/// Calls `describe` in a sandbox and checks the manifest.
fn describe(loaded: &Loaded) -> Result<Manifest, PluginError> {
    let manifest = loaded
        .describe()
        .map_err(|e| PluginError::Invalid(format!("describe failed: {e}")))?;
    check_name(&manifest.name).map_err(|e| PluginError::Invalid(format!("the manifest: {e}")))?;
    Ok(Manifest {
        name: manifest.name,
        version: manifest.version,
        description: manifest.description,
        subscription: Subscription {
            types: manifest.subscription.types,
            receivers: manifest.subscription.receivers,
            paths: Vec::new(),
        },
        capabilities: manifest
            .capabilities
            .into_iter()
            .map(|c| capability_name(c).to_owned())
            .collect(),
    })
}

/// Checks a plugin name: 1 to 64 characters of `a-z`, `0-9` and `-`.
pub fn check_name(name: &str) -> Result<(), PluginError> {
    let valid = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    match valid {
        true => Ok(()),
        false => Err(PluginError::Invalid(format!(
            "plugin name {name:?} must be 1 to 64 characters of a-z, 0-9 and -"
        ))),
    }
}

/// The precompiled form of `component`, to store.
pub fn serialize(component: &Component) -> Result<Vec<u8>, PluginError> {
    component
        .serialize()
        .map_err(|e| PluginError::Internal(format!("cannot serialize a component: {e:#}")))
}

/// Loads a precompiled component made by [`serialize`] with the same engine settings.
pub fn deserialize(engine: &PluginEngine, artifact: &[u8]) -> Result<Component, PluginError> {
    // SAFETY: the artifact was made by `serialize` in this gateway and read back from its own
    // store; wasmtime checks that it was compiled by this version with the same settings.
    unsafe { Component::deserialize(&engine.engine, artifact) }
        .map_err(|e| PluginError::Internal(format!("cannot load a precompiled plugin: {e:#}")))
}
