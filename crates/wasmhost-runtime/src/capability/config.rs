//! `wasi:config/store` (0.2.0-rc.1): the config values and secrets an app is
//! given (`[app.config]`, `--config-value`), read by the SDK's
//! `wasmhost.config`. Values are resolved when the app version loads (a
//! secret from the host's environment or a file), so a reload picks up a
//! rotated secret; the app state is the resolved list, shared by the
//! version's instances. Nothing here logs a value.

use std::collections::BTreeMap;
use std::sync::Arc;

use anyhow::Result;
use wasmtime::component::{HasData, Linker};

use super::Capability;
use crate::store::StoreData;
use wasmhost_spec::AppSpec;

mod bindings {
    wasmtime::component::bindgen!({
        path: "../../wit",
        inline: "
            package wasmhost:config-host;

            world config-host {
                import wasi:config/store@0.2.0-rc.1;
            }
        ",
        world: "wasmhost:config-host/config-host",
        imports: { default: trappable },
        require_store_data_send: true,
    });
}

use bindings::wasi::config::store;

/// The config capability.
pub struct Config;

/// An app version's config values, by key.
pub type ConfigValues = Arc<BTreeMap<String, String>>;

impl Capability for Config {
    type App = ConfigValues;
    type Instance = ConfigValues;

    fn app(spec: &AppSpec, _previous: Option<&ConfigValues>) -> Result<ConfigValues> {
        Ok(Arc::new(spec.env.config.iter().map(|entry| (entry.key.clone(), entry.value.clone())).collect()))
    }

    fn instance(app: &ConfigValues) -> Result<ConfigValues> {
        Ok(app.clone())
    }

    fn add_to_linker(linker: &mut Linker<StoreData>) -> Result<()> {
        store::add_to_linker::<StoreData, ConfigData>(linker, |data| ConfigView(&data.capabilities.config))
            .map_err(|err| anyhow::Error::from(err).context("cannot add wasi:config to the linker"))
    }
}

struct ConfigView<'a>(&'a ConfigValues);

struct ConfigData;

impl HasData for ConfigData {
    type Data<'a> = ConfigView<'a>;
}

impl store::Host for ConfigView<'_> {
    fn get(&mut self, key: String) -> wasmtime::Result<Result<Option<String>, store::Error>> {
        Ok(Ok(self.0.get(&key).cloned()))
    }

    fn get_all(&mut self) -> wasmtime::Result<Result<Vec<(String, String)>, store::Error>> {
        Ok(Ok(self.0.iter().map(|(key, value)| (key.clone(), value.clone())).collect()))
    }
}
