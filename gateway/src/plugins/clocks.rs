//! WASI clocks a plugin cannot wait on. A component built for WASI links
//! `wasi:clocks/monotonic-clock`, whose `subscribe-duration` and `subscribe-instant` (behind
//! `std::thread::sleep` and timeouts) would block the calling thread for as long as the plugin
//! asks, in the host, where no CPU budget runs. Here they give a pollable that is ready at
//! once: a plugin can read the time, never wait for it (the contract's only clock is
//! `host.now-ms`), and every call stays within its budget.

use wasmtime::component::{Linker, Resource, ResourceTable};
use wasmtime_wasi::WasiView;
use wasmtime_wasi::p2::{DynPollable, Pollable, subscribe};

use super::sandbox::Sandbox;

/// The WASI clocks interface whose waits are replaced (the version wasmtime-wasi links;
/// components importing an earlier 0.2 version link to it too).
const MONOTONIC_CLOCK: &str = "wasi:clocks/monotonic-clock@0.2.12";

/// A pollable that is always ready.
struct Ready;

#[wasmtime_wasi::async_trait]
impl Pollable for Ready {
    async fn ready(&mut self) {}
}

fn ready(table: &mut ResourceTable) -> wasmtime::Result<Resource<DynPollable>> {
    let resource = table.push(Ready)?;
    subscribe(table, resource)
}

/// Replaces the waits of the monotonic clock in `linker` (already holding WASI) with
/// pollables that are ready at once.
pub fn never_wait(linker: &mut Linker<Sandbox>) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    let mut clock = linker.instance(MONOTONIC_CLOCK)?;
    for name in ["subscribe-duration", "subscribe-instant"] {
        clock.func_wrap(name, |mut store, (_,): (u64,)| {
            Ok((ready(store.data_mut().ctx().table)?,))
        })?;
    }
    linker.allow_shadowing(false);
    Ok(())
}
